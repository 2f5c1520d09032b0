"""Who may read which real-time topic: the hook domain apps register, the access sets in Redis.

A topic is `<namespace>.<id>` (docs/protocol.md, "Topics and access"). An app that publishes
on a namespace registers, once, a function that says who may read its topics:

    realtime.register("note", note_readers)   # readers(ids) -> {id: {user ids}}

and calls `realtime.changed("note", note.pk)` whenever that answer may have changed. Django
keeps, per topic, the Redis SET `rt:acl:<topic>` of those user ids; the real-time service
checks it on every subscription. A user dropped from a set gets an `access.revoked` event on
the topic, and every real-time process drops their subscription at once.

Why sets in Redis rather than a call from the real-time service to Django: the check is one
SISMEMBER on the Redis both already use, needs no new internal HTTP endpoint, no cache to
invalidate, and keeps working while Django restarts. The sets are rebuilt from the database
at every release (`manage.py realtime_sync`, run by the migrate step) and again if Redis has
lost them (the `rt:acl:ready` marker is missing when a token is issued).
"""

import logging
import re
from collections.abc import Callable, Iterable

import redis
from django.db import connection, transaction

from core import events
from core.breaker import redis_breaker

log = logging.getLogger(__name__)

NAMESPACE_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
READY_KEY = "rt:acl:ready"
REVOKED = "access.revoked"
# pg_advisory_xact_lock(LOCK_CLASS, hashtext(namespace)): one sync of a namespace at a time.
LOCK_CLASS = 0x7274  # "rt"

# readers(ids): {id: user ids who may read <namespace>.<id>} for the given ids, or for every
# id that has readers when ids is None (the rebuild). An id missing from the answer has none.
Readers = Callable[[Iterable[int] | None], dict[int, Iterable[int]]]

_namespaces: dict[str, Readers] = {}


def register(namespace: str, readers: Readers) -> None:
    """Declare who may read `<namespace>.<id>` topics (call it from AppConfig.ready)."""
    if not NAMESPACE_RE.match(namespace):
        raise ValueError(f"namespace {namespace!r} must match {NAMESPACE_RE.pattern}")
    if _namespaces.get(namespace, readers) is not readers:
        raise ValueError(f"namespace {namespace!r} is already registered")
    _namespaces[namespace] = readers


def namespaces() -> list[str]:
    return sorted(_namespaces)


def topic(namespace: str, id_: int) -> str:
    return f"{namespace}.{id_}"


def acl_key(topic_: str) -> str:
    return f"rt:acl:{topic_}"


def changed(namespace: str, id_: int | None) -> None:
    """Who may read `<namespace>.<id>` (every id: None) may have changed: update the sets once
    the transaction commits (at once outside one); users who lost access get a revocation."""
    if namespace not in _namespaces:
        raise LookupError(f"namespace {namespace!r} is not registered")
    ids = None if id_ is None else [id_]
    transaction.on_commit(lambda: sync(namespace, ids), robust=True)


# Replace each set in KEYS with its members from ARGV (per key: a count, then the members) and
# return, per key, the members it lost: atomic, so two syncs never interleave their reads and
# writes, and one round trip per batch of topics rather than two per topic.
_REPLACE_SETS = """
local out, a = {}, 1
for i, key in ipairs(KEYS) do
  local n = tonumber(ARGV[a])
  local keep = {}
  for j = a + 1, a + n do keep[ARGV[j]] = true end
  local lost = {}
  for _, m in ipairs(redis.call('SMEMBERS', key)) do
    if not keep[m] then lost[#lost + 1] = m end
  end
  redis.call('DEL', key)
  for j = a + 1, a + n, 5000 do
    redis.call('SADD', key, unpack(ARGV, j, math.min(j + 4999, a + n)))
  end
  a = a + n + 1
  out[i] = lost
end
return out
"""
SYNC_BATCH = 500  # topics per script call


def sync(namespace: str, ids: Iterable[int] | None = None) -> set[str]:
    """Write the access sets of these ids (all when None) from the database; returns the keys
    written. Removal comes before its `access.revoked` event: a process that sees the event
    can no longer admit the user (the real-time side relies on that order).

    Syncs of a namespace take turns (a Postgres advisory lock held from the read to the write):
    otherwise a sync that read the database before a revoking commit could write its older
    answer after the revoking sync, and give access back."""
    client = events.redis_client()
    written: set[str] = set()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [LOCK_CLASS, namespace])
        readers = _namespaces[namespace](ids)
        todo = list(readers if ids is None else ids)
        for start in range(0, len(todo), SYNC_BATCH):
            batch = todo[start : start + SYNC_BATCH]
            keys, argv = [], []
            for id_ in batch:
                keys.append(acl_key(topic(namespace, id_)))
                members = {str(u) for u in readers.get(id_, ())}
                argv += [len(members), *members]
            lost = client.eval(_REPLACE_SETS, len(keys), *keys, *argv)
            written.update(keys)
            for id_, users in zip(batch, lost, strict=True):
                for user in sorted(users, key=int):
                    events.publish(topic(namespace, id_), REVOKED, None, {"user": int(user)})
    return written


def rebuild() -> int:
    """Every namespace's sets from the database, then the marker that they are complete."""
    client = events.redis_client()
    before = set(client.scan_iter(match="rt:acl:*.*", count=1000))
    written = set()
    for namespace in namespaces():
        written |= sync(namespace)
    # Sets of topics nobody may read any more (e.g. a Redis older than the database).
    for key in before - written:
        client.delete(key)
    client.set(READY_KEY, "1")
    log.info("real-time access sets rebuilt: %d topics", len(written))
    return len(written)


def ensure_ready() -> None:
    """Rebuild the sets if Redis lost them (flushed, or a fresh Redis). With Redis away there
    is nothing to rebuild into: the real-time service cannot admit anyone meanwhile either."""
    try:
        if redis_breaker.allows() and not events.redis_client().exists(READY_KEY):
            rebuild()
    except redis.RedisError as exc:
        log.warning("real-time access sets not checked: %s", exc)


# The namespace core owns: `user.<id>` is that user's private topic (notifications, the
# infrastructure's own tests), readable by that user only while the account is active.
def user_readers(ids):
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.filter(is_active=True)
    if ids is not None:
        users = users.filter(pk__in=list(ids))
    return {pk: [pk] for pk in users.values_list("pk", flat=True)}
