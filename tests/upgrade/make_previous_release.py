"""Make the data a user of the previous release has: written by that release's own code.

The previous release (PREVIOUS_RELEASE, a commit of this repository) is exported with
`git archive` into a scratch folder and run from there in a subprocess, through its own pages
(streamlit's AppTest on its streamlit_app.py): the OpenAI-compatible provider is saved on its
Settings page (key, base URL, model name), two messages are sent on its Chat page to a server
that refuses `stream_options`, so that release learns and keeps `no_stream_options` by its own
path, and the chat stays in its history. Nothing of today's code is imported there.

    make_previous_release.py local DATA_DIR --base-url URL --api-key KEY --model NAME
        a local data folder: DATA_DIR/switchboard.db and DATA_DIR/encryption.key
    make_previous_release.py supabase-schema --db-url URL --supabase-cli PATH
        the previous release's migrations pushed to an empty (bootstrapped) database
    make_previous_release.py supabase --base-url URL --api-key KEY --model NAME
                                      --email EMAIL --password PASSWORD
        a user signed up through that release's Sign-up page, with the same saved settings
        and chat; reads SUPABASE_URL, SUPABASE_ANON_KEY, SWITCHBOARD_ENCRYPTION_KEYS and
        SWITCHBOARD_ALLOWED_HOSTS from the environment

The base URL is an argument, not a fixed port: the tests run this script against a server they
have just started, so no port has to be free at a known number. The server must be running
(the previous release really chats with it) and must answer 400 to `stream_options`. A JSON
report of what that release showed (the chat's title and messages, the model picked) is
printed on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PREVIOUS_RELEASE = "f352e17"
# What the app needs to run; docs, tests and benchmarks are left out of the export.
APP_PATHS = ("streamlit_app.py", "core", "pages", ".streamlit", "supabase")
MESSAGES = ("Hello from the previous release", "And a second message")
QUIRK = "no_stream_options"
# Settings of the calling shell that must not reach the previous release unless given.
_OWN_SETTINGS = ("SWITCHBOARD_", "SUPABASE_", "OPENAI_")
# The Supabase CLI would otherwise check for updates and send telemetry.
_QUIET_CLI = {"DO_NOT_TRACK": "1", "SUPABASE_TELEMETRY_DISABLED": "1",
              "SUPABASE_NO_UPDATE_NOTIFIER": "1"}


def export_previous_release(into: Path) -> Path:
    """The previous release's app files under `into` (read-only on the repository)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", PREVIOUS_RELEASE, *APP_PATHS],
                             capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def _environment(settings: dict[str, str], tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_SETTINGS)}
    env.update(settings)
    env["PYTHONPATH"] = str(tree)  # the previous release's `core`, never today's
    return env


def _run_previous_release(tree: Path, arguments: list[str], settings: dict[str, str]) -> None:
    """This script again, as the previous release: its `core` on the path, a scratch folder
    as working directory (no .env or secrets.toml of the checkout is read)."""
    with tempfile.TemporaryDirectory(prefix="previous-release-cwd-") as cwd:
        result = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--in-previous-release", str(tree),
             *arguments],
            env=_environment(settings, tree), cwd=cwd, capture_output=True, text=True,
            timeout=300, check=False,
        )
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        sys.stdout.write(result.stdout)
        raise SystemExit(f"the previous release ({PREVIOUS_RELEASE}) failed "
                         f"with exit code {result.returncode}")
    sys.stdout.write(result.stdout)


# ---------------------------------------------------------------- inside the previous release


def _check(at) -> None:
    if at.exception:
        raise AssertionError(f"the previous release raised: {at.exception}")
    if at.error:
        raise AssertionError(f"the previous release said: {[e.value for e in at.error]}")


def _sign_up(at, email: str, password: str):
    at.switch_page("pages/sign_up.py").run()
    at.text_input(key="sign_up:email").set_value(email)
    at.text_input(key="sign_up:password").set_value(password)
    at.button[0].click().run()
    _check(at)
    if [t.value for t in at.title] != ["Chat"]:
        raise AssertionError(f"signing up did not open the chat: {[t.value for t in at.title]}")
    return at


def _save_provider(at, base_url: str, api_key: str, model: str):
    """The OpenAI-compatible expander of the previous release's Settings page, then Save."""
    at.switch_page("pages/settings.py").run()
    field = "settings:openai-compatible:{}".format
    at.text_input(key=field("base_url")).set_value(base_url).run()
    at.text_input(key=field("key")).set_value(api_key).run()
    at.text_input(key=field("model")).set_value(model).run()
    at.button(key=field("save")).click().run()
    _check(at)
    if not any("saved" in s.value.lower() for s in at.success):
        raise AssertionError(f"Save said nothing saved: {[s.value for s in at.success]}")
    return at


def _chat(at):
    at.switch_page("pages/chat.py").run()
    _check(at)
    for text in MESSAGES:
        at.chat_input(key="chat:input").set_value(text).run()
        _check(at)
    messages = [(m.name, "\n".join(md.value for md in m.markdown)) for m in at.chat_message]
    if [role for role, _ in messages] != ["user", "assistant"] * len(MESSAGES):
        raise AssertionError(f"the chat did not get its replies: {messages}")
    chats = [b.label for b in at.sidebar.button
             if b.key and b.key.startswith("history:open:")]
    return {"title": chats[0] if chats else None, "chats": chats, "messages": messages,
            "model": at.selectbox(key="chat:model").value}


def _kept_profile(mode: str, email: str, password: str):
    """The profile as the previous release's own store reads it back."""
    from core.config import load_settings

    settings = load_settings(environ=os.environ, dotenv_path=None)
    if mode == "local":
        from core.store.sqlite import SQLiteProfileStore

        return SQLiteProfileStore(Path(settings.data_dir)).load()
    from core.auth import SupabaseAuth
    from core.store.supabase import SupabaseProfileStore

    auth = SupabaseAuth(settings)
    user = auth.sign_in(email, password)
    return SupabaseProfileStore(auth.client, user.id).load()


def _as_previous_release(tree: Path, args: argparse.Namespace) -> None:
    from streamlit.testing.v1 import AppTest

    import core

    if not Path(core.__file__).resolve().is_relative_to(tree.resolve()):
        raise AssertionError(f"core was imported from {core.__file__}, not from {tree}")
    at = AppTest.from_file(str(tree / "streamlit_app.py"), default_timeout=60).run()
    _check(at)
    if args.mode == "supabase":
        _sign_up(at, args.email, args.password)
    _save_provider(at, args.base_url, args.api_key, args.model)
    shown = _chat(at)
    kept = _kept_profile(args.mode, getattr(args, "email", ""), getattr(args, "password", ""))
    if kept.openai_compatible_quirks != QUIRK:
        raise AssertionError(f"the previous release did not keep {QUIRK}: "
                             f"{kept.openai_compatible_quirks!r}")
    if not kept.openai_compatible_api_key.startswith("gAAAA"):  # Fernet: the key is encrypted
        raise AssertionError("the previous release did not store the key encrypted")
    print(json.dumps({"release": PREVIOUS_RELEASE, **shown}))


# ---------------------------------------------------------------- the command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--in-previous-release", type=Path, help=argparse.SUPPRESS)
    modes = parser.add_subparsers(dest="mode", required=True)
    local = modes.add_parser("local", help="a local data folder")
    local.add_argument("data_dir", type=Path)
    schema = modes.add_parser("supabase-schema", help="the previous release's migrations")
    schema.add_argument("--db-url", required=True)
    schema.add_argument("--supabase-cli", required=True, type=Path)
    hosted = modes.add_parser("supabase", help="a Supabase user's data, through the API")
    hosted.add_argument("--email", required=True)
    hosted.add_argument("--password", required=True)
    for mode in (local, hosted):
        mode.add_argument("--base-url", required=True)
        mode.add_argument("--api-key", required=True)
        mode.add_argument("--model", required=True)
    return parser


def _push_schema(tree: Path, db_url: str, cli: Path) -> None:
    """`supabase db push` of the previous release's own supabase/migrations."""
    with tempfile.TemporaryDirectory(prefix="supabase-cli-home-") as home:
        env = {**os.environ, **_QUIET_CLI, "HOME": home}
        result = subprocess.run([str(cli), "db", "push", "--db-url", db_url, "--yes",
                                 "--workdir", str(tree)], cwd=tree, env=env,
                                capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise SystemExit(f"supabase db push failed ({result.returncode}):\n"
                         f"{result.stdout}{result.stderr}")


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.in_previous_release:
        _as_previous_release(args.in_previous_release, args)
        return
    with tempfile.TemporaryDirectory(prefix="previous-release-") as scratch:
        tree = export_previous_release(Path(scratch))
        if args.mode == "supabase-schema":
            _push_schema(tree, args.db_url, args.supabase_cli)
            return
        settings = {}
        if args.mode == "local":
            args.data_dir.mkdir(parents=True, exist_ok=True)
            settings["SWITCHBOARD_DATA_DIR"] = str(args.data_dir.resolve())
        else:
            for name in ("SUPABASE_URL", "SUPABASE_ANON_KEY", "SWITCHBOARD_ENCRYPTION_KEYS",
                         "SWITCHBOARD_ALLOWED_HOSTS"):
                if os.environ.get(name):
                    settings[name] = os.environ[name]
        _run_previous_release(tree, sys.argv[1:] if argv is None else argv, settings)


if __name__ == "__main__":
    main()
