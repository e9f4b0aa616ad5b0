"""The bot's configuration: one pydantic-settings class, read from the environment once at start."""

from __future__ import annotations

import os
import re
import socket
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/lstmbot.sqlite3"
DEFAULT_CACHE_DIR = Path("data/cache")
_TOKEN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}")


class Settings(BaseSettings):
    """Every setting the bot reads; each maps to an upper-case environment variable."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_token: SecretStr | None = None
    # Telegram's own by default; point at a local Bot API server or the sandbox.
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    database_url: str = DEFAULT_DATABASE_URL
    model_dir: Path = Path("models")
    default_model: str = "nietzsche-char"
    # The models to load from MODEL_DIR, comma-separated (empty: all of them; DEFAULT_MODEL
    # always): a small machine serves the ones its users want (docs/deploy.md).
    models: Annotated[frozenset[str], NoDecode] = frozenset()
    # Hot reload: how often (seconds) the bot looks at the model registry for new champions and
    # challengers (0: never; MODEL_DIR only), and where it unpacks the bundles it fetches.
    model_poll_s: float = Field(default=10, ge=0)
    model_cache_dir: Path = Path("data/model-cache")
    # Challengers: the share of /duel that pits a model's challenger against its champion, and
    # the sequential test that promotes or retires it (bot/promotion.py): its error rate and
    # the fewest and most votes.
    challenger_share: float = Field(default=0.3, ge=0, le=1)
    promotion_alpha: float = Field(default=0.05, gt=0, lt=1)
    promotion_min_votes: int = Field(default=30, ge=1)
    promotion_max_votes: int = Field(default=400, ge=1)
    # Where arrays derived from the models and books are kept between starts (core/cache.py):
    # the Chinese book's token ids (no jieba run at start) and the word model's input table
    # (mapped, not held in memory). Empty: none kept, all computed at every start.
    cache_dir: Path | None = DEFAULT_CACHE_DIR
    admin_user_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    # Per-user rate limit: generations a user may ask for per minute.
    rate_limit_per_minute: int = Field(default=12, ge=1)
    # Queue cap: requests beyond it are refused politely instead of piling up.
    max_queue: int = Field(default=256, ge=1)
    # Requests per batch the generation worker advances together.
    batch_max: int = Field(default=64, ge=1)
    # Threads sharing each big matrix product (1 or 2). 2 is ~25% quicker when generation has
    # both cores to itself, and slower when anything else needs one (core/qkernel.c).
    generation_threads: int = Field(default=1, ge=1, le=2)
    # The outbox: samples stored but not sent (Telegram down, a crash) are sent when the bot
    # starts and every OUTBOX_INTERVAL_S; ones older than OUTBOX_MAX_AGE_S are given up on.
    outbox_max_age_s: float = Field(default=3600, gt=0)
    outbox_interval_s: float = Field(default=30, gt=0)
    # A sample copying a longer run (tokens) from its model's book is drawn again, at most 3
    # times (0: off). See bot/novelty_badge.py.
    max_copied: int = Field(default=0, ge=0)
    # "Real or dream?": the default and the bounds of /game's voting time.
    game_seconds: int = Field(default=30, ge=10, le=600)
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    # Prometheus metrics port (0: off); served alongside the webhook when webhooks are on.
    metrics_port: int = Field(default=0, ge=0, le=65535)
    # A bearer token for /metrics. Without it /metrics answers only on METRICS_PORT (keep that
    # port private); the webhook port is public (Telegram must reach it), so there /metrics
    # is served only to requests with "Authorization: Bearer <METRICS_TOKEN>".
    metrics_token: SecretStr | None = None
    # Duels: the temperatures each loaded model is tried at (comma-separated), the counted
    # votes a user may cast per UTC day, and how soon after a duel is shown a vote counts.
    duel_temperatures: Annotated[tuple[float, ...], NoDecode] = (0.2, 0.5, 0.8, 1.0, 1.2)
    duel_daily_cap: int = Field(default=200, ge=0)
    duel_min_vote_s: float = Field(default=2.0, ge=0)
    # Which replica this process is, shown by /stats and /metrics (default: hostname:pid).
    replica_id: str = Field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    # A replica sending a sample holds a claim on it this long; another replica (its outbox, a
    # redelivered update) sends it only after the claim expired, e.g. because the sender died.
    send_claim_s: float = Field(default=120, gt=0)
    # PostgreSQL (replicas): a user's in-flight slot is a lease this long, so a replica killed
    # mid-request blocks that user at most this long (a redelivery of the same update takes
    # the slot over at once).
    limit_lease_s: float = Field(default=180, gt=0)
    log_level: str = "INFO"
    # "text" for people, "json" for log collectors.
    log_format: Literal["text", "json"] = "text"

    @field_validator("telegram_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        """A bot token looks like 123456:ABC-def...; say so at start instead of failing later."""
        if value is None or not value.get_secret_value().strip():
            return None
        token = value.get_secret_value().strip()
        if not _TOKEN.fullmatch(token):
            raise ValueError(
                "TELEGRAM_TOKEN is malformed: expected '<digits>:<35 letters, digits, - or _>' "
                "as given by @BotFather"
            )
        return SecretStr(token)

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError("WEBHOOK_SECRET is required when WEBHOOK_URL is set (1-256 of A-Z a-z 0-9 _ -)")
        return self

    @field_validator("cache_dir", mode="before")
    @classmethod
    def _no_cache_when_empty(cls, value: object) -> object:
        """CACHE_DIR= (empty) turns the cache off rather than naming the current folder."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("duel_temperatures", mode="before")
    @classmethod
    def _parse_temperatures(cls, value: object) -> object:
        """Accept "0.2, 0.5,1" as well as a list; each must be a temperature (0 to 2)."""
        if isinstance(value, str):
            value = tuple(float(part) for part in value.replace(";", ",").split(",") if part.strip())
        if isinstance(value, list | tuple) and not all(0 <= float(v) <= 2 for v in value):
            raise ValueError("DUEL_TEMPERATURES must be numbers from 0 to 2")
        return value

    @field_validator("models", mode="before")
    @classmethod
    def _parse_names(cls, value: object) -> object:
        """Accept "nietzsche-char, tang-char" as well as a list."""
        if isinstance(value, str):
            return frozenset(part.strip() for part in value.replace(";", ",").split(",") if part.strip())
        return value

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
