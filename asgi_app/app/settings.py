"""Configuration from the environment (twelve-factor), secrets from /run/kit-secrets."""

import sys
from functools import lru_cache
from pathlib import Path
from typing import Self
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRETS_DIR = Path("/run/kit-secrets")


class Settings(BaseSettings):
    # An environment variable wins over the secrets file (docs/design.md, "Secrets").
    model_config = SettingsConfigDict(
        secrets_dir=SECRETS_DIR if SECRETS_DIR.is_dir() else None,
        extra="ignore",
    )

    redis_url: str = "redis://localhost:6379/0"
    # The Redis ACL user's password (the URL names the user); added to the URL.
    redis_password: SecretStr = SecretStr("")
    # Required: no running service ever verifies tokens with a made-up key. Same floor as
    # Django's check (it signs with this key).
    realtime_token_key: SecretStr = Field(min_length=32)
    realtime_token_ttl: int = 300
    event_stream_maxlen: int = 10_000
    # Pub/Sub channels are `<prefix>__group__<topic>`; Django publishes with the same prefix.
    event_channel_prefix: str = Field(default="asgi", pattern=r"^[A-Za-z0-9_.-]{1,64}$")

    # WebSocket limits. A control message is a few hundred bytes; 4 KiB is generous.
    ws_max_message_bytes: int = 4096
    ws_rate_per_second: float = 10.0  # sustained client messages per second
    ws_rate_burst: int = 20  # messages allowed at once before the rate applies
    ws_rate_strikes: int = 20  # refused messages in a row before the connection is closed
    max_topics_per_connection: int = 100
    # Events waiting for one slow client; beyond this the client is closed (it resumes).
    send_queue_size: int = 256
    # Seconds the frames queued for a client may take to go out before it is closed (1013).
    ws_send_timeout: float = 10.0
    # Events replayed on resume; beyond this the client gets `resync` and refetches.
    replay_limit: int = 5000

    presence_ttl: float = 30.0  # seconds a presence entry lives without a refresh
    sse_heartbeat: float = 15.0  # comment lines keep idle proxies and clients from closing
    sse_retry_ms: int = 2000  # EventSource reconnect delay
    redis_max_connections: int = 2000  # blocking waits (io-wait) each hold one connection

    @model_validator(mode="after")
    def _redis_password_in_url(self) -> Self:
        password = self.redis_password.get_secret_value()
        parts = urlsplit(self.redis_url)
        if password and parts.password is None:  # a URL set by hand wins
            user, _, host = parts.netloc.rpartition("@")
            netloc = f"{user or 'default'}:{quote(password, safe='')}@{host}"
            self.redis_url = urlunsplit(parts._replace(netloc=netloc))
        return self


@lru_cache
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as e:
        raise RuntimeError(refusal(e)) from None


def refusal(e: ValidationError) -> str:
    """One line per bad setting, named as the environment variable that fixes it."""
    lines = []
    for err in e.errors():
        name = "_".join(map(str, err["loc"])).upper()
        if err["type"] == "too_short":  # pydantic says "items" for a SecretStr
            msg = f"must be at least {err['ctx']['min_length']} characters"
        else:
            msg = err["msg"]
        lines.append(f"  - {name}: {msg}")
    return "Refusing to start, fix these settings:\n" + "\n".join(lines)


if __name__ == "__main__":
    # `python -m app.settings`: the entry script checks the settings before Uvicorn starts,
    # so a bad value ends the container with this message instead of a traceback.
    try:
        get_settings()
    except RuntimeError as e:
        sys.exit(str(e))
