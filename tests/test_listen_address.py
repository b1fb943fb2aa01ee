"""The committed server config. The local default has no sign-in and holds the user's keys: it
listens on 127.0.0.1 only. And Streamlit's full collection after every script run is off.

Runs `streamlit run streamlit_app.py` with nothing but the committed .streamlit/config.toml
(no --server.address) and reads which addresses the kernel says it listens on. No traffic
goes anywhere but loopback.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import time

from tests.fixtures.common import REPO, free_port, stop, wait_for_port

LISTEN = "0A"  # the TCP state "listen" in /proc/net/tcp*


def _listening_addresses(port: int) -> set[str]:
    """Every local address with a socket listening on `port`, from /proc/net/tcp and tcp6."""
    found = set()
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        with open(table) as rows:
            next(rows)
            for row in rows:
                local, state = row.split()[1], row.split()[3]
                address, port_hex = local.split(":")
                if state != LISTEN or int(port_hex, 16) != port:
                    continue
                raw = bytes.fromhex(address)
                # The kernel prints each 32-bit word in host (little-endian) order.
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, width, 4))
                found.add(str(ipaddress.ip_address(words)))
    return found


def test_streamlit_run_listens_on_loopback_only(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMLIT_", "SUPABASE_"))}
    env.update(HOME=str(tmp_path), SWITCHBOARD_DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port)],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=60, proc=proc)
        deadline = time.monotonic() + 5
        while not (addresses := _listening_addresses(port)) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop(proc)
    assert addresses == {"127.0.0.1"}


def test_the_committed_config_turns_off_the_full_collection_after_every_script_run(tmp_path):
    """Streamlit's post-run gc.collect() blocked every session about 130 ms, twice a reply;
    the option is hidden, so a misspelt name would silently keep it on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    env.update(HOME=str(tmp_path))
    shown = subprocess.run(
        [sys.executable, "-c",
         "import streamlit as st; print(st.get_option('runner.postScriptGC'))"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=True,
    )
    assert shown.stdout.split() == ["False"]
