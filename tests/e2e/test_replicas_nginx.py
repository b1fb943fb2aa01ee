"""The README's several-replicas deployment in a real browser: two replicas in Supabase mode
on the test stack, Debian's nginx in front with the README's site (bench/replicas.py starts
exactly that), two browsers that sign in and chat. Every request of a browser, its page, its
scripts and its websocket, reaches one replica (nginx's log says which).

The browser reaches nginx by a name on a port of its own (`switchboard.test:PORT`, mapped to
127.0.0.1 inside Chromium), as users reach a deployment: Streamlit accepts a websocket whose
Origin is the Host it was sent, or a loopback name, so only a Host with its port (nginx's
`$http_host`) lets it in here."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from bench.replicas import COOKIE, PASSWORD, find_nginx, replicas_of_cookies, start_replicas
from bench.stream import BenchError, Processes, start_katan
from tests.e2e.browser import DESKTOP, messages, send, wait_idle
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.fixtures.common import missing

NAME = "switchboard.test"  # a name that is not loopback's, resolved by Chromium alone


@pytest.fixture
def replicas(tmp_path, supabase_stack):
    try:
        find_nginx()
    except BenchError as exc:
        missing(str(exc))
    processes = Processes(tmp_path)
    try:
        try:
            model_server = start_katan(processes)
        except BenchError as exc:
            missing(str(exc))
        yield start_replicas(processes, tmp_path, 2, model_server, 2, supabase_stack)
    finally:
        processes.stop_all()


@pytest.fixture
def named_browser(browser):
    """Another Chromium of the suite's Playwright, resolving NAME to 127.0.0.1."""
    named = browser.browser_type.launch(
        executable_path=str(CHROMIUM),
        args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {NAME} 127.0.0.1"])
    try:
        yield named
    finally:
        named.close()


def test_two_browsers_chat_through_nginx_each_on_one_replica(replicas, named_browser):
    cookies = []
    url = replicas.url.replace("127.0.0.1", NAME)
    for email in replicas.emails:
        page = named_browser.new_context(**DESKTOP).new_page()
        page.goto(url)
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("h1", has_text="Chat")).to_be_visible()
        wait_idle(page)
        send(page, f"hello from {email}")
        expect(messages(page, "assistant").last).to_contain_text(f"User: hello from {email}")
        [cookie] = [c["value"] for c in page.context.cookies() if c["name"] == COOKIE]
        cookies.append(cookie)
        page.context.close()
    for _ in range(50):  # nginx logs a websocket once it has closed
        lines = replicas.access_log.read_text().splitlines()
        streams = {line.split(" ")[0] for line in lines if line.endswith(" 101 /_stcore/stream")}
        if set(cookies) <= streams:
            break
        time.sleep(0.1)
    assert set(cookies) <= streams  # each browser's websocket went through nginx
    reached = replicas_of_cookies(replicas.access_log)
    apps = {app.removeprefix("http://").rstrip("/") for app in replicas.apps}
    for cookie in cookies:
        assert len(reached[cookie]) == 1 and reached[cookie] <= apps, reached[cookie]
