"""A user's connections from all three origins, and quirks learned about them: kept in the
origin's store so no tab, replica or restart pays the failed request again (the operator's,
which no store keeps, per process)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable, Mapping

from core.failures import UserFacingError
from core.providers.connections import Connection
from core.providers.kinds import Target
from core.providers.profile import Profile
from core.providers.seed import seed_connections

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
    seed = seed_connections(profile, server_keys, unreadable)
    return [_with_learned(c) for c in (*seed, *operator, *own)]


def learn(target: Target, quirk: str, stores: Mapping[str, object]) -> None:
    """Kept in `stores[origin]` (None: unavailable); a store failure costs one retry, not raised."""
    with _learned_lock:
        key = (target.connection_id, target.base_url)
        _learned[key] = _learned.get(key, frozenset()) | {quirk}
    origin = target.connection_id.partition(":")[0] if ":" in target.connection_id else "user"
    store = stores.get(origin)
    if store is None:
        return
    try:
        store.learn(target.connection_id, quirk)
    except UserFacingError as exc:
        logger.warning("Could not keep what %s does not support (%s): %s",
                       target.base_url, quirk, exc)
