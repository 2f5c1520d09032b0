"""Configuration from the environment (twelve-factor), secrets from /run/kit-secrets."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRETS_DIR = Path("/run/kit-secrets")


class Settings(BaseSettings):
    # An environment variable wins over the secrets file (docs/design.md, "Secrets").
    model_config = SettingsConfigDict(
        secrets_dir=SECRETS_DIR if SECRETS_DIR.is_dir() else None,
        extra="ignore",
    )

    redis_url: str = "redis://localhost:6379/0"
    # Required: no running service ever verifies tokens with a made-up key.
    realtime_token_key: SecretStr = Field(min_length=16)
    realtime_token_ttl: int = 300
    event_stream_maxlen: int = 10_000

    # WebSocket limits. A control message is a few hundred bytes; 4 KiB is generous.
    ws_max_message_bytes: int = 4096
    ws_rate_per_second: float = 10.0  # sustained client messages per second
    ws_rate_burst: int = 20  # messages allowed at once before the rate applies
    ws_rate_strikes: int = 20  # refused messages in a row before the connection is closed
    max_topics_per_connection: int = 100
    # Events waiting for one slow client; beyond this the client is closed (it resumes).
    send_queue_size: int = 256
    # Events replayed on resume; beyond this the client gets `resync` and refetches.
    replay_limit: int = 5000

    presence_ttl: float = 30.0  # seconds a presence entry lives without a refresh
    sse_heartbeat: float = 15.0  # comment lines keep idle proxies and clients from closing
    sse_retry_ms: int = 2000  # EventSource reconnect delay
    redis_max_connections: int = 2000  # blocking waits (io-wait) each hold one connection


@lru_cache
def get_settings() -> Settings:
    return Settings()
