"""Several `streamlit run` replicas behind nginx with sticky sessions, sharing one Supabase stack.

bench/concurrency.py's `--replicas N`: the Supabase stand-in stack the tests use
(tests/supabase_stack: PostgreSQL with the migrations pushed by the Supabase CLI, PostgREST, the
auth stand-in), N app processes in Supabase mode on loopback ports, and Debian's nginx in front
with the configuration README.md's "Running several replicas" shows (`nginx_site`). The model
server reaches every user as an administrator's connection (SWITCHBOARD_CONNECTIONS).

Stickiness: nginx gives a browser's first response a random cookie and hashes every request on
it (`hash ... consistent`), so the page, its websocket and its reconnects reach one replica.
"""

from __future__ import annotations

import os
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench.stream import MODEL, BenchError, Processes, Server, app_command
from tests.fixtures.common import free_port

COOKIE = "switchboard_replica"
PASSWORD = "a bench password, long enough"
CONNECTION_ID = "bench-relay"
CONNECTION_NAME = "Bench relay"

# The site, as README.md shows it: `listen`, the replicas' addresses and the cookie's flags vary.
SITE = """\
# One browser, one replica: its Streamlit session (the websocket /_stcore/stream, uploads,
# media) lives in the process that served its first request.
map $cookie_switchboard_replica $switchboard_replica {
    ""      $request_id;                  # a browser's first request: a new random key
    default $cookie_switchboard_replica;
}
map $cookie_switchboard_replica $switchboard_new_cookie {
    ""      "switchboard_replica=$request_id; Path=/; HttpOnly; SameSite=Lax{cookie_flags}";
    default "";                           # the browser has one: no Set-Cookie
}
map $http_upgrade $connection_upgrade {
    default upgrade;
    ""      close;
}
upstream switchboard {
    hash $switchboard_replica consistent;  # a replica added or removed moves only its share
{servers}
}
server {
{listen}
    location / {
        proxy_pass http://switchboard;
        proxy_http_version 1.1;           # the page talks to /_stcore/stream over a websocket
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_set_header Host $http_host; # with the port: Streamlit compares it to the Origin
        proxy_read_timeout 1d;            # a long reply or an idle tab keeps its websocket
        add_header Set-Cookie $switchboard_new_cookie always;
    }
}
"""


def nginx_site(ports: list[int], listen: list[str], cookie_flags: str = "") -> str:
    """The site for replicas on 127.0.0.1 `ports`, with `listen` lines (each one directive)."""
    servers = "\n".join(f"    server 127.0.0.1:{port};" for port in ports)
    listening = "\n".join(f"    {line}" for line in listen)
    return (SITE.replace("{servers}", servers).replace("{listen}", listening)
            .replace("{cookie_flags}", cookie_flags))


# The bench's own frame around the site: everything in its work folder, one worker, a log of
# which replica served each request's cookie (written when the request, or websocket, ends).
MAIN = """\
{user}daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    log_format replicas '$switchboard_replica $upstream_addr $status $request_uri';
    access_log {work}/nginx-access.log replicas;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    include {work}/switchboard-site.conf;
}}
"""


def find_nginx() -> Path:
    """Debian's nginx (package nginx-light): $SB_NGINX_BIN, else /usr/sbin/nginx."""
    path = Path(os.environ.get("SB_NGINX_BIN") or "/usr/sbin/nginx")
    if not os.access(path, os.X_OK):
        raise BenchError(f"nginx is not installed at {path}: run `bash tests/run_all.sh` once"
                         " (it installs Debian's nginx-light), or set SB_NGINX_BIN")
    return path


def start_nginx(processes: Processes, work: Path, ports: list[int]) -> str:
    """nginx on a free loopback port in front of the replicas; returns its URL."""
    nginx, port = find_nginx(), free_port()
    (work / "switchboard-site.conf").write_text(nginx_site(ports, [f"listen 127.0.0.1:{port};"]))
    user = "user root;\n" if os.geteuid() == 0 else ""  # its workers write the temp folders
    (work / "nginx.conf").write_text(MAIN.format(user=user, work=work))
    processes.start("nginx", [str(nginx), "-p", str(work), "-c", str(work / "nginx.conf"),
                              "-e", "stderr"], f"http://127.0.0.1:{port}/_stcore/health")
    return f"http://127.0.0.1:{port}/"


def page_cookie(url: str) -> str:
    """What a browser keeps from loading the page: the replica cookie, as `name=value`."""
    request = urllib.request.Request(url)
    with urllib.request.urlopen(request, timeout=30) as response:
        for header in response.headers.get_all("Set-Cookie") or []:
            if header.startswith(f"{COOKIE}="):
                return header.split(";", 1)[0]
    raise BenchError(f"nginx set no {COOKIE} cookie on {url}")


def replicas_of_cookies(access_log: Path) -> dict[str, set[str]]:
    """cookie value -> every replica (host:port) nginx sent a request of that browser to,
    its first request (before it had the cookie) included."""
    found: dict[str, set[str]] = {}
    if access_log.exists():
        for line in access_log.read_text().splitlines():
            key, upstream = (line.split(" ") + ["", ""])[:2]
            if upstream not in ("", "-"):
                found.setdefault(key, set()).add(upstream)
    return found


# ---------------------------------------------------------------- the stack and the users


def start_stack():
    """The Supabase stand-in stack the tests use; BenchError when a part is missing."""
    from tests.supabase_stack.stack import Tools, start_stack as start

    tools = Tools.from_environment()
    if absent := tools.missing():
        raise BenchError(f"missing {', '.join(absent)}: run `bash tests/run_all.sh` once, or "
                         "`source tests/setup/supabase.sh` from the repository root")
    try:
        return start(tools)
    except (RuntimeError, TimeoutError, OSError) as exc:
        raise BenchError(f"the Supabase stack did not start: {exc}\n"
                         + "\n".join(getattr(exc, "__notes__", []))) from exc


def sign_up_users(stack, count: int) -> list[str]:
    """`count` new accounts (through the stack's auth); returns their emails."""
    import httpx

    def sign_up(_) -> str:
        email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
        response = httpx.post(f"{stack.url}/auth/v1/signup",
                              json={"email": email, "password": PASSWORD},
                              headers={"apikey": stack.anon_key}, timeout=30)
        if response.status_code != 200:
            raise BenchError(f"signing up a bench user failed: {response.status_code}")
        return email

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(sign_up, range(count)))


def operator_connection(relay: Server) -> str:
    """SWITCHBOARD_CONNECTIONS: the relay, for every user, set by the administrator."""
    return (f'[connections.{CONNECTION_ID}]\nname = "{CONNECTION_NAME}"\n'
            f'kind = "openai-compatible"\nbase_url = "{relay.base_url}"\n'
            f'api_key = "{relay.api_key}"\nmodels = ["{MODEL}"]\n')


@dataclass
class Replicas:
    """The running deployment: `url` is nginx's, `apps` each replica's own address."""

    url: str
    apps: list[str]
    pids: list[int]
    access_log: Path
    emails: list[str] = field(default_factory=list)  # the accounts made, one per user asked


def start_replicas(processes: Processes, work: Path, count: int, relay: Server, users: int,
                   stack) -> Replicas:
    """`count` apps in Supabase mode on one stack, nginx in front, and `users` accounts."""
    env = {
        "SUPABASE_URL": stack.url, "SUPABASE_ANON_KEY": stack.anon_key,
        # One secret for every replica: a key one encrypts, any other reads.
        "SWITCHBOARD_ENCRYPTION_KEYS": _fernet_key(),
        "SWITCHBOARD_ALLOWED_HOSTS": "127.0.0.1",  # the model server is on loopback here
        "SWITCHBOARD_CONNECTIONS": operator_connection(relay),
        "SWITCHBOARD_CHAT_TITLES": "off",  # the relay sees only the replies measured
    }
    apps, pids, ports = [], [], []
    for index in range(1, count + 1):
        folder = work / f"replica-{index}"
        folder.mkdir()
        port = free_port()
        processes.start(f"replica-{index}", app_command(folder, port),
                        f"http://127.0.0.1:{port}/_stcore/health", env=_app_env(env),
                        timeout=60)
        apps.append(f"http://127.0.0.1:{port}/")
        pids.append(processes.pid_of(f"replica-{index}"))
        ports.append(port)
    url = start_nginx(processes, work, ports)
    emails = sign_up_users(stack, users)
    return Replicas(url, apps, pids, work / "nginx-access.log", emails)


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _app_env(settings: dict[str, str]) -> dict[str, str]:
    from core.config import SETTING_NAMES

    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    return {**env, **settings}
