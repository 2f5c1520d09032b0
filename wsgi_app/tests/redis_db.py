"""Loaded with `-p tests.redis_db` before pytest-django reads the settings.

Points the tests at Redis DB 14 (flushed around each test) and at a channel-layer prefix of
their own, so a test run never touches the stack's data or its live subscribers (Pub/Sub
channels are shared by all Redis DBs). Runs in development mode: production's HTTPS
redirect would only add noise to every request here; production mode has its own tests.
"""

import os
import re

TEST_REDIS_DB = 14

for name in ("REDIS_URL", "CACHE_URL"):
    url = os.environ.get(name, os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
    os.environ[name] = re.sub(r"(/\d+)?$", f"/{TEST_REDIS_DB}", url, count=1)
os.environ["CHANNEL_LAYER_PREFIX"] = "kittest"
os.environ["DJANGO_ENV"] = "development"
os.environ.setdefault("DJANGO_DEBUG", "false")
