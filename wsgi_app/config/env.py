"""The service's settings, read from the environment and the secrets directory.

One typed class instead of scattered `os.environ` look-ups: a typo in a value fails at start
with the variable's name, not later in a request. Precedence (pydantic-settings): environment
variable, then the secrets file of the same name in /run/kit-secrets, then the default.
"""

from pathlib import Path
from typing import Literal, Self
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRETS_DIR = Path("/run/kit-secrets")

# What `django.core.checks.security` calls a weak key; refusing it here stops the start
# instead of printing a warning nobody reads.
MIN_SECRET_LENGTH = 50
MIN_SECRET_UNIQUE = 5


class Env(BaseSettings):
    model_config = SettingsConfigDict(
        # Only when it exists: development and the image build run without the volume.
        secrets_dir=SECRETS_DIR if SECRETS_DIR.is_dir() else None,
        extra="ignore",
    )

    django_env: Literal["production", "development"] = "production"
    django_debug: bool | None = None  # None: on in development, off in production
    django_secret_key: str = ""
    django_allowed_hosts: str = ""  # comma-separated
    django_csrf_trusted_origins: str = ""  # comma-separated, with scheme: https://example.com
    django_log_level: str = "INFO"

    database_host: str = "localhost"
    database_port: int = 5432
    database_name: str = "app"
    database_user: str = "app"
    postgres_password: str = ""
    # Django's psycopg 3 pool (per process, shared by the gthread threads); off = one
    # persistent connection per thread with health checks.
    database_pool: bool = True
    database_pool_max: int = Field(default=0, ge=0)  # 0: the number of Gunicorn threads

    redis_url: str = "redis://localhost:6379/0"  # event streams + channel layer
    cache_url: str = "redis://localhost:6379/1"  # cache + sessions
    # The Redis ACL user's password (the URLs name the user); added to both URLs.
    redis_password: str = ""
    # Pub/Sub channels `<prefix>__group__<topic>`: the real-time service reads the same setting.
    event_channel_prefix: str = Field(default="asgi", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    event_stream_maxlen: int = Field(default=10000, gt=0)

    realtime_token_key: str = ""
    realtime_token_ttl: int = Field(default=300, gt=0, le=3600)

    attachment_max_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    gunicorn_threads: str = ""
    # The /status page's source (the `monitoring` profile's Prometheus, on `backend`).
    prometheus_url: str = "http://prometheus:9090"

    @model_validator(mode="after")
    def _redis_password_in_urls(self) -> Self:
        self.redis_url = with_password(self.redis_url, self.redis_password)
        self.cache_url = with_password(self.cache_url, self.redis_password)
        return self

    @property
    def production(self) -> bool:
        return self.django_env == "production"

    @property
    def debug(self) -> bool:
        return (not self.production) if self.django_debug is None else self.django_debug

    @staticmethod
    def split(value: str) -> list[str]:
        return [item.strip() for item in value.split(",") if item.strip()]

    def unsafe_production_settings(self) -> list[str]:
        """Everything that makes a production start unsafe, each with what to do about it."""
        problems = []
        if self.debug:
            problems.append("DJANGO_DEBUG is on: unset it or set DJANGO_DEBUG=false.")
        key = self.django_secret_key
        if not key:
            problems.append(
                "No secret key: provide /run/kit-secrets/django_secret_key "
                "(the `secrets` service makes one) or set DJANGO_SECRET_KEY."
            )
        elif (
            len(key) < MIN_SECRET_LENGTH
            or len(set(key)) < MIN_SECRET_UNIQUE
            or key.startswith("django-insecure-")
        ):
            problems.append(
                f"DJANGO_SECRET_KEY is weak: use at least {MIN_SECRET_LENGTH} random characters "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(50))'`)."
            )
        hosts = self.split(self.django_allowed_hosts)
        if not hosts:
            problems.append("DJANGO_ALLOWED_HOSTS is empty: list the site's host names.")
        elif "*" in hosts:
            problems.append("DJANGO_ALLOWED_HOSTS contains '*': list the site's host names.")
        if len(self.realtime_token_key) < 32:
            problems.append(
                "REALTIME_TOKEN_KEY is missing or shorter than 32 characters: provide "
                "/run/kit-secrets/realtime_token_key or set REALTIME_TOKEN_KEY."
            )
        if not self.postgres_password:
            problems.append(
                "No database password: provide /run/kit-secrets/postgres_password "
                "or set POSTGRES_PASSWORD."
            )
        return problems


def with_password(url: str, password: str) -> str:
    """`url` with `password` added, unless it carries one already (a URL set by hand wins)."""
    parts = urlsplit(url)
    if not password or parts.password is not None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    netloc = f"{user or 'default'}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))
