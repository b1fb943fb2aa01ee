"""Every connection a user has, from its three origins, and what is learned about them.

The chat asks for `every_connection(...)` and gets plain Connections; when a server turns out
not to support something, `learn(...)` keeps it with the connection where it lives (the
profile's column for the seed's compatible provider, the connection's row for the user's own),
so another tab, replica or restart does not pay the failed request again (R6.4). What cannot be
kept in a store (the operator's connections, the seed's OpenAI, a store that is down) is kept
for this process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable, Mapping

from core.failures import UserFacingError
from core.providers.profile import Profile
from core.providers.connections import Connection, profile_connection, write_quirks
from core.providers.kinds import PROVIDERS, REGISTRY, Target

logger = logging.getLogger(__name__)

_learned: dict[tuple[str, str], frozenset[str]] = {}  # (connection id, base URL) -> quirks
_learned_lock = threading.Lock()


def _with_learned(connection: Connection) -> Connection:
    with _learned_lock:
        learned = _learned.get((connection.id, connection.base_url), frozenset())
    if learned <= connection.quirks:
        return connection
    return connection.with_changes(quirks=connection.quirks | learned)


def every_connection(profile: Profile, server_keys: Mapping[str, str],
                     unreadable: Collection[str], operator: Iterable[Connection],
                     own: Iterable[Connection]) -> list[Connection]:
    """The seed's two providers, then the administrator's connections, then the user's own."""
    seed = [profile_connection(p, profile, server_keys, unreadable) for p in REGISTRY]
    return [_with_learned(c) for c in (*seed, *operator, *own)]


def learn(target: Target, quirk: str, profile_store=None,
          connection_store=None) -> None:
    """Keep `quirk` for the connection `target` came from. Never raises: a store that cannot
    keep it now only means one more failed request later (it is logged)."""
    with _learned_lock:
        key = (target.connection_id, target.base_url)
        _learned[key] = _learned.get(key, frozenset()) | {quirk}
    origin, _, rest = target.connection_id.partition(":")
    try:
        if origin == "profile" and profile_store is not None and PROVIDERS[rest].quirks_field:
            _keep_in_profile(profile_store, PROVIDERS[rest].quirks_field, target, quirk)
        elif origin not in ("profile", "operator") and connection_store is not None:
            connection_store.learn(target.connection_id, quirk)
    except UserFacingError as exc:
        logger.warning("Could not keep what %s does not support (%s): %s",
                       target.base_url, quirk, exc)


def _keep_in_profile(store, column: str, target: Target, quirk: str) -> None:
    for _ in range(2):  # once more if another tab saved meanwhile
        stored = store.load()
        if stored.openai_compatible_base_url and target.base_url not in (
                stored.openai_compatible_base_url, stored.openai_compatible_base_url.rstrip("/")):
            return  # the user moved to another server since: this one's quirk is not its
        quirks = set(getattr(stored, column).split(",")) - {""}
        if quirk in quirks:
            return
        try:
            store.save(stored.with_changes(**{column: write_quirks(quirks | {quirk})}))
            return
        except UserFacingError as exc:
            failure = exc
    raise failure
