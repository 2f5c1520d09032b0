"""Who may read a topic: the access sets Django keeps in Redis (docs/protocol.md, "Topics").

A topic is `<namespace>.<id>`. Django owns the answer: for every topic it keeps the SET
`rt:acl:<topic>` of user ids that may read it, updated on every change of who may read, and
the key `rt:acl:ready` once all sets are built. This service only asks, per subscription,
and never learns what a namespace means.
"""

import re

from redis.asyncio import Redis

TOPIC_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}\.[1-9][0-9]{0,18}$")
READY_KEY = "rt:acl:ready"
# The event type Django publishes on a topic when a user lost access to it.
REVOKED = "access.revoked"


class AccessUnavailable(Exception):
    """The access sets are being rebuilt (Redis lost them): retry shortly."""


def acl_key(topic: str) -> str:
    return f"rt:acl:{topic}"


async def forbidden(redis: Redis, user_id: int, topics: list[str]) -> list[str]:
    """The topics of `topics` that the user may not read (one round trip)."""
    if not topics:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for topic in topics:
            pipe.sismember(acl_key(topic), str(user_id))
        pipe.exists(READY_KEY)
        *members, ready = await pipe.execute()
    refused = [t for t, ok in zip(topics, members, strict=True) if not ok]
    if refused and not ready:
        raise AccessUnavailable("access sets are being rebuilt; retry shortly")
    return refused
