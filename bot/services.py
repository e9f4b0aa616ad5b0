"""The long-lived objects every handler needs, created in post_init and kept in bot_data."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from telegram.ext import ContextTypes

from bot.db.database import Database
from bot.generation import GenerationService
from bot.notices import NoticeThrottle
from bot.novelty import NoveltyService
from bot.settings import Settings
from bot.user_limits import AdmissionOrder, Limits

SERVICES_KEY = "services"


@dataclass
class Counters:
    """Process-wide counts for /stats and /metrics."""

    samples: int = 0
    ratings: int = 0
    errors: int = 0
    undelivered: int = 0
    started: float = field(default_factory=time.time)


@dataclass
class Services:
    """Settings, database, generation service and limits: one of each per process."""

    settings: Settings
    db: Database
    generation: GenerationService
    limits: Limits  # in memory (SQLite) or shared by the replicas (PostgreSQL)
    counters: Counters = field(default_factory=Counters)
    # Refusal notices ("one at a time", "slow down"): at most one per user every few seconds.
    notices: NoticeThrottle = field(default_factory=NoticeThrottle)
    # ⏭ presses, by (chat, message): a double tap sends the next sample once (in this process).
    next_presses: NoticeThrottle = field(default_factory=NoticeThrottle)
    # A user's requests are admitted (duplicate check, limits) one at a time, in order.
    admission: AdmissionOrder = field(default_factory=AdmissionOrder)
    # Sample ids being sent right now (the outbox leaves them alone).
    sending: set[int] = field(default_factory=set)
    # Sample id -> message id (None: uncertain) sent but not yet recorded (database down).
    unrecorded: dict[int, int | None] = field(default_factory=dict)
    # Sample ids whose send certainly failed but whose claim could not be released (database
    # down): the outbox releases them first, or they would wait out the claim's lease.
    unreleased: set[int] = field(default_factory=set)
    # Books and novelty indexes, built in a thread after start (absent until ready).
    novelty: NoveltyService = field(default_factory=lambda: NoveltyService({}))


def services_of(context: ContextTypes.DEFAULT_TYPE | Any) -> Services:
    """The services stored in the application's bot_data."""
    services: Services = context.application.bot_data[SERVICES_KEY]
    return services
