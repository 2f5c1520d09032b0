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
from django.db import transaction

from core import events
from core.breaker import redis_breaker

log = logging.getLogger(__name__)

NAMESPACE_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
READY_KEY = "rt:acl:ready"
REVOKED = "access.revoked"

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


def sync(namespace: str, ids: Iterable[int] | None = None) -> set[str]:
    """Write the access sets of these ids (all when None) from the database; returns the keys
    written. Removal comes before its `access.revoked` event: a process that sees the event
    can no longer admit the user (the real-time side relies on that order)."""
    readers = _namespaces[namespace](ids)
    client = events.redis_client()
    written = set()
    for id_ in readers if ids is None else ids:
        name = topic(namespace, id_)
        key = acl_key(name)
        new = {str(u) for u in readers.get(id_, ())}
        old = client.smembers(key)
        with client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if new:
                pipe.sadd(key, *new)
            pipe.execute()
        written.add(key)
        for user in sorted(old - new, key=int):
            events.publish(name, REVOKED, None, {"user": int(user)})
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
