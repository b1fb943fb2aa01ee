#!/usr/bin/env bash
# Mutation testing of core's pure modules: mutmut changes their code one small edit at a time
# (a mutant) and runs their fast unit tests against each; a mutant no test fails on survives.
# Settings: setup.cfg, [mutmut] (the modules, the tests). Survivors and why they are left:
# tests/mutation/SURVIVORS.md.
#
#   bash tests/mutation/run.sh            a fresh run (7 to 15 minutes on 2 cores), then scores
#   bash tests/mutation/run.sh --scores   the scores of the last run again
#   .venv/bin/mutmut show <mutant id>     the edit a mutant made
#
# Prints one line per module, "module: killed K of N (P%)", then its survivors' ids; exits 1
# when a module is below 90%. core/chat/netguard.py is scored on its address rules only (the
# mutants of its transport part are not run). Output: mutants/ (ignored by git), its run log
# mutants/run.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
MUTMUT=${MUTMUT:-.venv/bin/mutmut}

if [ "${1:-}" != "--scores" ]; then
    rm -rf mutants
    mapfile -t patterns < <("$PYTHON" tests/mutation/score.py patterns)
    log=$(mktemp)
    start=$SECONDS
    if ! "$MUTMUT" run "${patterns[@]}" >"$log" 2>&1; then
        tail -c 3000 "$log" | tr '\r' '\n' | tail -n 40
        echo "mutmut failed; its whole output: $log" >&2
        exit 2
    fi
    mv "$log" mutants/run.log
    echo "mutation run: $((SECONDS - start)) s"
fi
"$PYTHON" tests/mutation/score.py
