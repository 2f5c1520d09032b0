"""Django's Redis cache backend, made to survive a Redis outage.

Sessions use the `cached_db` engine: read from Redis, kept in Postgres. With this backend a
Redis outage reads as a cache miss (the session comes from Postgres) and a failed cache write
is logged, so users stay logged in and writes still succeed while Redis is away. After a
failure the breaker skips Redis for a few seconds instead of waiting on it per call.
"""

import hashlib
import logging

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

from core import metrics
from core.breaker import ping_redis, redis_breaker

log = logging.getLogger(__name__)


class TolerantRedisCache(RedisCache):
    def _attempt(self, operation: str, call, fallback):
        if not redis_breaker.allows():
            return fallback
        try:
            return call()
        except RedisError as exc:
            redis_breaker.trip(ping_redis)
            log.warning("cache %s failed, carrying on without the cache: %s", operation, exc)
            return fallback

    def get(self, key, default=None, version=None):
        missing = object()
        value = self._attempt(
            "get", lambda: super(TolerantRedisCache, self).get(key, missing, version), missing
        )
        metrics.CACHE.labels("miss" if value is missing else "hit").inc()
        return default if value is missing else value

    def get_many(self, keys, version=None):
        return self._attempt(
            "get_many", lambda: super(TolerantRedisCache, self).get_many(keys, version), {}
        )

    def has_key(self, key, version=None):
        return self._attempt(
            "has_key", lambda: super(TolerantRedisCache, self).has_key(key, version), False
        )

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        self._attempt(
            "set", lambda: super(TolerantRedisCache, self).set(key, value, timeout, version), None
        )

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._attempt(
            "add", lambda: super(TolerantRedisCache, self).add(key, value, timeout, version), False
        )

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._attempt(
            "touch", lambda: super(TolerantRedisCache, self).touch(key, timeout, version), False
        )

    def delete(self, key, version=None):
        return self._attempt(
            "delete", lambda: super(TolerantRedisCache, self).delete(key, version), False
        )

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._attempt(
            "set_many",
            lambda: super(TolerantRedisCache, self).set_many(data, timeout, version),
            list(data),
        )

    def delete_many(self, keys, version=None):
        self._attempt(
            "delete_many", lambda: super(TolerantRedisCache, self).delete_many(keys, version), None
        )

    def ping(self) -> bool:
        """For /api/readyz: asks Redis itself, breaker or not, and raises if it is away."""
        answered = self._cache.get_client(write=True).ping()
        redis_breaker.reset()
        return answered


def hashed_key(key: str, key_prefix: str, version: int) -> str:
    """Django's `prefix:version:key` with the key hashed, so no session id (or anything else
    a key is made of) shows in Redis key names."""
    return f"{key_prefix}:{version}:{hashlib.sha256(key.encode()).hexdigest()}"
