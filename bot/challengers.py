"""Challengers judged by blind duels: which /duel pits a model's challenger against its
champion, and the verdict after every counted vote.

A share of /duel (CHALLENGER_SHARE) on a model whose challenger this replica serves pairs the
two versions at the user's temperature, sides drawn at random, hidden like every duel. Each
counted vote on such a duel re-runs the sequential test (`bot.promotion`, valid when checked
after every vote) on all of the challenger's votes; a verdict promotes or retires it in the
registry (every replica's watcher then serves the change) and tells the bot's admins.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot
from telegram.error import TelegramError

from bot.calls import telegram_call
from bot.db import repository as repo
from bot.db.models import Duel
from bot.db.repository import models as registry
from bot.db.repository.models import RegistryError
from bot.generation import CHALLENGER, UnknownModelError
from bot.promotion import Rules, Standing, judge
from bot.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Contest:
    """The two versions a challenger duel runs, in the order shown (A, B)."""

    model: str
    version_a: str
    version_b: str


def rules(services: Services) -> Rules:
    """The sequential test's settings."""
    s = services.settings
    return Rules(alpha=s.promotion_alpha, min_votes=s.promotion_min_votes, max_votes=s.promotion_max_votes)


def contest_for(services: Services, model: str) -> Contest | None:
    """A challenger duel for `model` this time (CHALLENGER_SHARE of the asks), or None."""
    generation = services.generation
    try:
        challenger = generation.info(model, CHALLENGER).version
    except UnknownModelError:
        return None
    if secrets.randbelow(10_000) >= services.settings.challenger_share * 10_000:
        return None
    champion = generation.info(model).version
    if champion == challenger:
        return None
    first, second = (champion, challenger) if secrets.randbits(1) else (challenger, champion)
    return Contest(model, first, second)


def is_contest(duel: Duel) -> bool:
    """Whether a duel pits two versions of one arm (a challenger duel)."""
    return (
        duel.model_a == duel.model_b
        and duel.temperature_a == duel.temperature_b
        and duel.version_a != duel.version_b
    )


async def standing(
    session: AsyncSession, services: Services, name: str
) -> tuple[repo.Version, Standing] | None:
    """The current challenger of `name` and where it stands (None: no challenger)."""
    challenger = await repo.challenger_of(session, name=name)
    champion = await repo.champion_of(session, name=name)
    if challenger is None:
        return None
    champion_version = champion.version if champion is not None else services.generation.info(name).version
    return challenger, await standing_against(session, challenger, champion_version, rules(services))


async def standing_against(
    session: AsyncSession, challenger: repo.Version, champion_version: str, test: Rules
) -> Standing:
    """Where a challenger stands against this champion version in their blind duels."""
    scores = await repo.challenger_scores(
        session, name=challenger.name, champion=champion_version, challenger=challenger.version
    )
    return judge(scores, test)


async def after_vote(bot: Bot, services: Services, duel: Duel) -> Standing | None:
    """After a counted vote on a challenger duel: the test's verdict, acted on once (the
    registry's per-name lock and its rules make a second replica's attempt a no-op)."""
    if not is_contest(duel):
        return None
    name = duel.model_a

    async def decide(session: AsyncSession) -> tuple[str, Standing] | None:
        found = await standing(session, services, name)
        if found is None:
            return None
        challenger, where = found
        if challenger.version not in (duel.version_a, duel.version_b):
            return None  # a vote on an earlier challenger's duel
        if where.verdict == "promote":
            await registry.promote(session, name=name, version=challenger.version)
        elif where.verdict == "retire":
            await registry.retire(session, name=name, version=challenger.version, reason=where.reason)
        return challenger.version, where

    try:
        decided = await services.db.run(decide)
    except RegistryError as exc:  # decided meanwhile elsewhere
        log.info("challenger of %s: %s", name, exc)
        return None
    if decided is None:
        return None
    version, where = decided
    if where.verdict != "continue":
        log.warning("challenger %s %s: %s (%s)", name, version, where.verdict, where.reason)
        await _tell_admins(bot, services, f"Challenger {name} {version}: {where.verdict}d, {where.reason}.")
    return where


async def _tell_admins(bot: Bot, services: Services, message: str) -> None:
    for admin in sorted(services.settings.admin_user_ids):
        try:
            await telegram_call(lambda admin=admin: bot.send_message(admin, message))  # type: ignore[misc]
        except TelegramError as exc:
            log.warning("could not tell an admin about a challenger: %s", exc)


__all__ = ["Contest", "after_vote", "contest_for", "is_contest", "rules", "standing"]
