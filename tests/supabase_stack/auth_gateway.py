"""A TEST STAND-IN for Supabase's API gateway and its Auth server (GoTrue). Never deploy it.

GoTrue cannot be obtained from any registry these tests may use, so this small Starlette app
plays SUPABASE_URL for the suite:

- `/rest/v1/*` is passed to the real PostgREST, headers and all (as Supabase's Kong does);
- `/auth/v1/*` implements the slice of GoTrue that supabase-py uses: `POST /signup`,
  `POST /token?grant_type=password|refresh_token`, `GET /user`, `POST /logout`. It writes real
  rows into `auth.users` (so the project's own trigger creates the profile), hashes passwords
  with bcrypt, keeps sessions and rotating refresh tokens in `auth.sessions` and
  `auth.refresh_tokens` (created by bootstrap.sql), and signs HS256 access tokens with the
  secret PostgREST verifies. Sign-up confirms at once, like a project with autoconfirm on.

Responses and errors take GoTrue's shapes (API version 2024-01-01, which supabase-auth 2.34
asks for), so the app's error handling sees what it would see in production.

Run it with `uvicorn --factory tests.supabase_stack.auth_gateway:create_app` and the
settings in `SB_GATEWAY_DSN`, `SB_GATEWAY_POSTGREST_URL` and `SB_GATEWAY_JWT_SECRET`.
"""

from __future__ import annotations

import os
import re
import secrets
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

import bcrypt
import httpx
import jwt
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

ACCESS_TOKEN_SECONDS = 3600
API_KEY_SECONDS = 10 * 365 * 24 * 3600
API_VERSION = "2024-01-01"
MIN_PASSWORD_LENGTH = 6
BCRYPT_ROUNDS = 4  # a test stand-in: fast hashing beats strength here
EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# Hop-by-hop headers, and encodings httpx has already undone, must not be passed on.
NOT_FORWARDED = {
    "host", "content-length", "connection", "keep-alive", "transfer-encoding", "upgrade",
    "te", "trailer", "proxy-authorization", "proxy-connection", "accept-encoding",
    "content-encoding", "date", "server",
}


def api_key(jwt_secret: str, role: str) -> str:
    """A project API key as Supabase issues them: a long-lived JWT naming only a role."""
    now = int(time.time())
    claims = {"iss": "supabase-demo", "role": role, "iat": now, "exp": now + API_KEY_SECONDS}
    return jwt.encode(claims, jwt_secret, algorithm="HS256")


@dataclass(frozen=True)
class GatewayConfig:
    dsn: str  # a role that may write the auth schema
    postgrest_url: str
    jwt_secret: str
    access_token_seconds: int = ACCESS_TOKEN_SECONDS  # short in fault tests: tokens renew

    @classmethod
    def from_environment(cls) -> GatewayConfig:
        return cls(
            dsn=os.environ["SB_GATEWAY_DSN"],
            postgrest_url=os.environ["SB_GATEWAY_POSTGREST_URL"],
            jwt_secret=os.environ["SB_GATEWAY_JWT_SECRET"],
            access_token_seconds=int(os.environ.get("SB_GATEWAY_ACCESS_TOKEN_SECONDS",
                                                    ACCESS_TOKEN_SECONDS)),
        )


class AuthError(Exception):
    """An error GoTrue would answer with: HTTP status, error code, message, extra fields."""

    def __init__(self, status: int, code: str, message: str, **extra) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def auth_error_response(request: Request, error: AuthError) -> JSONResponse:
    """GoTrue's error body: new shape for clients on API version 2024-01-01, legacy otherwise."""
    if request.headers.get("x-supabase-api-version", "") >= API_VERSION:
        body = {"code": error.code, "message": error.message}
    else:
        body = {"code": error.status, "error_code": error.code, "msg": error.message}
    return JSONResponse({**body, **error.extra}, error.status, headers=version_header())


def version_header() -> dict[str, str]:
    return {"X-Supabase-Api-Version": API_VERSION}


class RequireApiKey(BaseHTTPMiddleware):
    """Refuse requests without the project's anon or service_role key, as Supabase's Kong does."""

    async def dispatch(self, request: Request, call_next):
        key = request.headers.get("apikey") or request.query_params.get("apikey")
        if not key:
            return JSONResponse({"message": "No API key found in request"}, 401)
        # Keys are minted with iat/exp, so compare what they claim rather than the strings.
        if claims_of_api_key(request.app.state.config, key) is None:
            return JSONResponse({"message": "Invalid API key"}, 401)
        return await call_next(request)


def claims_of_api_key(config: GatewayConfig, key: str) -> dict | None:
    try:
        claims = jwt.decode(key, config.jwt_secret, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    return claims if claims.get("role") in ("anon", "service_role") else None


# ---- /rest/v1: PostgREST behind the gateway -------------------------------------------------


async def proxy_to_postgrest(request: Request) -> Response:
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in NOT_FORWARDED]
    try:
        upstream = await request.app.state.postgrest.request(
            request.method,
            "/" + request.path_params["path"] + ("?" + request.url.query if request.url.query else ""),
            headers=headers,
            content=await request.body(),
        )
    except httpx.TransportError:  # PostgREST down: what Supabase's gateway (Kong) answers
        return JSONResponse(
            {"message": "An invalid response was received from the upstream server"}, 502)
    response = Response(upstream.content, upstream.status_code)
    for name, value in upstream.headers.multi_items():
        if name.lower() not in NOT_FORWARDED:
            response.headers.append(name, value)
    return response


# ---- /auth/v1: the GoTrue stand-in ----------------------------------------------------------


async def signup(request: Request) -> JSONResponse:
    body = await json_body(request)
    email = checked_email(body.get("email"))
    password = checked_new_password(body.get("password"))
    hashed = await run_in_threadpool(hash_password, password)
    async with await connect(request) as conn:
        user = await insert_user(conn, email, hashed, body.get("data") or {})
        return await session_response(request, conn, user)


async def token(request: Request) -> JSONResponse:
    grants = {"password": password_grant, "refresh_token": refresh_token_grant}
    grant = grants.get(request.query_params.get("grant_type", ""))
    if grant is None:
        raise AuthError(400, "validation_failed", "unsupported_grant_type")
    return await grant(request, await json_body(request))


async def password_grant(request: Request, body: dict) -> JSONResponse:
    email = str(body.get("email") or "").strip().lower()
    password = str(body.get("password") or "")
    async with await connect(request) as conn:
        user = await fetch_one(conn, "select * from auth.users where email = %s", email)
        if user is None or not await run_in_threadpool(password_matches, password, user):
            raise AuthError(400, "invalid_credentials", "Invalid login credentials")
        user = await fetch_one(
            conn, "update auth.users set last_sign_in_at = now() where id = %s returning *",
            user["id"],
        )
        return await session_response(request, conn, user)


async def refresh_token_grant(request: Request, body: dict) -> JSONResponse:
    async with await connect(request) as conn:
        old = await fetch_one(
            conn, "select * from auth.refresh_tokens where token = %s for update",
            str(body.get("refresh_token") or ""),
        )
        if old is None:
            raise AuthError(400, "refresh_token_not_found",
                            "Invalid Refresh Token: Refresh Token Not Found")
        if old["revoked"]:
            raise AuthError(400, "refresh_token_already_used",
                            "Invalid Refresh Token: Already Used")
        await conn.execute(
            "update auth.refresh_tokens set revoked = true, updated_at = now() where id = %s",
            (old["id"],),
        )
        user = await fetch_one(conn, "select * from auth.users where id = %s", old["user_id"])
        refresh = await new_refresh_token(conn, user["id"], old["session_id"], parent=old["token"])
        return JSONResponse(session_json(request, user, old["session_id"], refresh),
                            headers=version_header())


async def get_user(request: Request) -> JSONResponse:
    async with await connect(request) as conn:
        user, _ = await authenticated(request, conn)
        return JSONResponse(user_json(user), headers=version_header())


async def logout(request: Request) -> Response:
    scopes = {
        "global": "delete from auth.sessions where user_id = %(user)s",
        "local": "delete from auth.sessions where id = %(session)s",
        "others": "delete from auth.sessions where user_id = %(user)s and id <> %(session)s",
    }
    scope = request.query_params.get("scope", "global")
    if scope not in scopes:
        raise AuthError(400, "validation_failed", f"Unsupported logout scope {scope!r}")
    async with await connect(request) as conn:
        user, claims = await authenticated(request, conn)
        await conn.execute(scopes[scope], {"user": user["id"], "session": claims["session_id"]})
    return Response(status_code=204, headers=version_header())


# ---- checks and helpers ---------------------------------------------------------------------


async def json_body(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise AuthError(400, "bad_json", "Could not parse request body as JSON")
    return body


def checked_email(value) -> str:
    email = str(value or "").strip().lower()
    if len(email) > 255 or not EMAIL_SHAPE.fullmatch(email):
        raise AuthError(400, "validation_failed",
                        "Unable to validate email address: invalid format")
    return email


def checked_new_password(value) -> str:
    password = str(value or "")
    if not password:
        raise AuthError(422, "validation_failed", "Signup requires a valid password")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AuthError(422, "weak_password",
                        f"Password should be at least {MIN_PASSWORD_LENGTH} characters.",
                        weak_password={"reasons": ["length"]})
    if len(password.encode()) > 72:  # bcrypt's limit, which GoTrue enforces too
        raise AuthError(422, "validation_failed", "Password cannot be longer than 72 characters")
    return password


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()


def password_matches(password: str, user: dict) -> bool:
    hashed = (user["encrypted_password"] or "").encode()
    try:
        return bool(hashed) and bcrypt.checkpw(password.encode(), hashed)
    except ValueError:  # over bcrypt's 72 bytes: cannot be the stored password
        return False


async def connect(request: Request) -> psycopg.AsyncConnection:
    """One connection per request; `async with` on it commits, or rolls back on error."""
    return await psycopg.AsyncConnection.connect(
        request.app.state.config.dsn, row_factory=dict_row
    )


async def fetch_one(conn: psycopg.AsyncConnection, query: str, *params) -> dict | None:
    cursor = await conn.execute(query, params)
    return await cursor.fetchone()


async def insert_user(conn: psycopg.AsyncConnection, email: str, hashed: str, data) -> dict:
    try:
        return await fetch_one(
            conn,
            "insert into auth.users (id, email, encrypted_password, email_confirmed_at,"
            " last_sign_in_at, raw_user_meta_data)"
            " values (gen_random_uuid(), %s, %s, now(), now(), %s) returning *",
            email, hashed, Jsonb(data if isinstance(data, dict) else {}),
        )
    except psycopg.errors.UniqueViolation:
        raise AuthError(422, "user_already_exists", "User already registered") from None
    except psycopg.Error:
        # What GoTrue says when a trigger on auth.users fails.
        raise AuthError(500, "unexpected_failure", "Database error saving new user") from None


async def session_response(request: Request, conn, user: dict) -> JSONResponse:
    session_id = await fetch_one(
        conn, "insert into auth.sessions (id, user_id) values (gen_random_uuid(), %s)"
        " returning id", user["id"],
    )
    refresh = await new_refresh_token(conn, user["id"], session_id["id"])
    return JSONResponse(session_json(request, user, session_id["id"], refresh),
                        headers=version_header())


async def new_refresh_token(conn, user_id, session_id, parent: str | None = None) -> str:
    refresh = secrets.token_urlsafe(24)
    await conn.execute(
        "insert into auth.refresh_tokens (token, user_id, session_id, parent)"
        " values (%s, %s, %s, %s)",
        (refresh, user_id, session_id, parent),
    )
    return refresh


async def authenticated(request: Request, conn) -> tuple[dict, dict]:
    """The user and claims of the request's bearer token, checked the way GoTrue checks them."""
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not bearer:
        raise AuthError(401, "no_authorization", "This endpoint requires a valid Bearer token")
    claims = decoded_access_token(request.app.state.config, bearer)
    user = await fetch_one(conn, "select * from auth.users where id = %s", claims["sub"])
    if user is None:
        raise AuthError(403, "user_not_found", "User from sub claim in JWT does not exist")
    session = await fetch_one(
        conn, "select id from auth.sessions where id = %s", claims.get("session_id")
    )
    if session is None:
        raise AuthError(403, "session_not_found",
                        "Session from session_id claim in JWT does not exist")
    return user, claims


def decoded_access_token(config: GatewayConfig, token: str) -> dict:
    try:
        claims = jwt.decode(token, config.jwt_secret, algorithms=["HS256"],
                            audience="authenticated", options={"require": ["sub", "exp"]})
        uuid.UUID(str(claims["sub"]))
        uuid.UUID(str(claims.get("session_id")))
    except (jwt.PyJWTError, ValueError) as error:
        raise AuthError(403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, "
                                        f"{error}") from None
    return claims


def session_json(request: Request, user: dict, session_id, refresh_token: str) -> dict:
    now = int(time.time())
    lifetime = request.app.state.config.access_token_seconds
    claims = {
        "iss": str(request.base_url).rstrip("/") + "/auth/v1",
        "sub": str(user["id"]),
        "aud": "authenticated",
        "exp": now + lifetime,
        "iat": now,
        "email": user["email"],
        "phone": "",
        "app_metadata": user["raw_app_meta_data"],
        "user_metadata": user["raw_user_meta_data"],
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now}],
        "session_id": str(session_id),
        "is_anonymous": False,
    }
    return {
        "access_token": jwt.encode(claims, request.app.state.config.jwt_secret, "HS256"),
        "token_type": "bearer",
        "expires_in": lifetime,
        "expires_at": claims["exp"],
        "refresh_token": refresh_token,
        "user": user_json(user),
    }


def user_json(user: dict) -> dict:
    user_id = str(user["id"])
    identity = {
        "identity_id": str(uuid.uuid5(user["id"], "email")),  # stable: no auth.identities here
        "id": user_id,
        "user_id": user_id,
        "identity_data": {"email": user["email"], "email_verified": True,
                          "phone_verified": False, "sub": user_id},
        "provider": "email",
        "last_sign_in_at": timestamp(user["created_at"]),
        "created_at": timestamp(user["created_at"]),
        "updated_at": timestamp(user["updated_at"]),
        "email": user["email"],
    }
    return {
        "id": user_id,
        "aud": user["aud"],
        "role": user["role"],
        "email": user["email"],
        "email_confirmed_at": timestamp(user["email_confirmed_at"]),
        "phone": "",
        "confirmed_at": timestamp(user["email_confirmed_at"]),
        "last_sign_in_at": timestamp(user["last_sign_in_at"]),
        "app_metadata": user["raw_app_meta_data"],
        "user_metadata": user["raw_user_meta_data"],
        "identities": [identity],
        "created_at": timestamp(user["created_at"]),
        "updated_at": timestamp(user["updated_at"]),
        "is_anonymous": user["is_anonymous"],
    }


def timestamp(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if value else None


def create_app(config: GatewayConfig | None = None) -> Starlette:
    config = config or GatewayConfig.from_environment()

    @asynccontextmanager
    async def lifespan(app: Starlette):
        async with httpx.AsyncClient(base_url=config.postgrest_url, timeout=30) as client:
            app.state.postgrest = client
            yield

    auth_routes = [
        Route("/signup", signup, methods=["POST"]),
        Route("/token", token, methods=["POST"]),
        Route("/user", get_user, methods=["GET"]),
        Route("/logout", logout, methods=["POST"]),
    ]
    app = Starlette(
        routes=[
            Mount("/auth/v1", routes=auth_routes),
            Route("/rest/v1/{path:path}", proxy_to_postgrest,
                  methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        ],
        middleware=[Middleware(RequireApiKey)],
        exception_handlers={AuthError: auth_error_response},
        lifespan=lifespan,
    )
    app.state.config = config
    return app
