"""pytest plugin for mutation runs only (setup.cfg, [mutmut] pytest_add_cli_args).

- Hypothesis is made repeatable and patient: the same examples on every run (derandomize, no
  example database) and no deadline or health check, which a machine busy running mutants
  in parallel trips at random. A mutant is then killed by what the tests check, never by
  timing, and a run's score depends only on the code and the tests.
- The sharp tests (tests/test_sharp_*.py: small, exact) run first, so the mutants they kill
  are killed in milliseconds instead of after the slower property tests.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "mutation",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile("mutation")


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: not item.nodeid.startswith("tests/test_sharp_"))
