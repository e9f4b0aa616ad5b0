"""The bot's configuration: one pydantic-settings class, read from the environment once at start."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/lstmbot.sqlite3"


class Settings(BaseSettings):
    """Every setting the bot reads; each maps to an upper-case environment variable."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_token: SecretStr | None = None
    # Telegram's own by default; point at a local Bot API server or the sandbox.
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    database_url: str = DEFAULT_DATABASE_URL
    model_dir: Path = Path("models")
    default_model: str = "nietzsche-char"
    admin_user_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    # Per-user rate limit: at most `rate_limit_count` generations per `rate_limit_window_s`.
    rate_limit_count: int = Field(default=5, ge=1)
    rate_limit_window_s: float = Field(default=10.0, gt=0)
    # Queue cap: requests beyond it are refused politely instead of piling up.
    queue_max: int = Field(default=256, ge=1)
    # Requests per batch the generation worker advances together.
    batch_max: int = Field(default=32, ge=1)
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = 8443
    log_level: str = "INFO"

    @field_validator("admin_user_ids", mode="before")
    @classmethod
    def _parse_ids(cls, value: object) -> object:
        """Accept "1, 2,3" as well as a list."""
        if isinstance(value, str):
            return frozenset(int(part) for part in value.replace(";", ",").split(",") if part.strip())
        if isinstance(value, int):
            return frozenset({value})
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return Settings()
