"""Duels and their votes: what /duel, /leaderboard and the preference exports read and write.

Like the other repository modules, functions take the session explicitly and never commit.
A vote is one row per (duel, user), changed in place; whether it counts is decided when it is
cast (too fast after the message went out, or beyond the user's daily cap: stored, not counted).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import DUEL_OUTCOMES, Chat, Duel, DuelVote, StoredSample, User, utcnow
from bot.db.outcomes import Outcome, Vote
from bot.db.repository.base import dialect_insert


@dataclass(frozen=True, order=True)
class Arm:
    """One way of writing: a model at a temperature."""

    model: str
    temperature: float

    @property
    def label(self) -> str:
        """The arm's name on the leaderboard, e.g. "nietzsche-char@0.5"."""
        return f"{self.model}@{self.temperature:g}"


def _between_arms() -> ColumnElement[bool]:
    """Duels between two arms (the leaderboard's); a challenger duel has one arm on both sides
    (the same model and temperature, two versions) and is judged on its own."""
    return or_(Duel.model_a != Duel.model_b, Duel.temperature_a != Duel.temperature_b)


def arms_for(models: Sequence[str], temperatures: Sequence[float]) -> list[Arm]:
    """Every (model, temperature) combination, in a stable order."""
    return sorted({Arm(model, float(t)) for model in models for t in temperatures})


def arm_a(duel: Duel) -> Arm:
    """The arm shown as A."""
    return Arm(duel.model_a, duel.temperature_a)


def arm_b(duel: Duel) -> Arm:
    """The arm shown as B."""
    return Arm(duel.model_b, duel.temperature_b)


async def pair_counts(session: AsyncSession) -> dict[frozenset[Arm], int]:
    """Counted votes so far per unordered pair of arms."""
    stmt = (
        select(Duel.model_a, Duel.temperature_a, Duel.model_b, Duel.temperature_b, func.count())
        .join(DuelVote, DuelVote.duel_id == Duel.id)
        .where(DuelVote.counted, _between_arms())
        .group_by(Duel.model_a, Duel.temperature_a, Duel.model_b, Duel.temperature_b)
    )
    counts: dict[frozenset[Arm], int] = {}
    for model_a, temp_a, model_b, temp_b, n in (await session.execute(stmt)).all():
        key = frozenset({Arm(model_a, temp_a), Arm(model_b, temp_b)})
        counts[key] = counts.get(key, 0) + int(n)
    return counts


def choose_pair(
    arms: Sequence[Arm], counts: dict[frozenset[Arm], int], rng: random.Random | None = None
) -> tuple[Arm, Arm]:
    """The pair of arms with the fewest counted votes (ties at random), in random A/B order."""
    if len(arms) < 2:
        raise ValueError("a duel needs at least two arms")
    rng = rng or random.Random()
    pairs = [(x, y) for i, x in enumerate(arms) for y in arms[i + 1 :]]
    fewest = min(counts.get(frozenset(p), 0) for p in pairs)
    first, second = rng.choice([p for p in pairs if counts.get(frozenset(p), 0) == fewest])
    return (first, second) if rng.random() < 0.5 else (second, first)


@dataclass(frozen=True)
class Side:
    """One side of a duel as generated."""

    arm: Arm
    version: str
    rng_seed: int
    text: str


async def record_duel(
    session: AsyncSession,
    *,
    user_id: int,
    chat_id: int,
    private: bool,
    seed: str,
    length: int,
    a: Side,
    b: Side,
    update_id: int | None,
    seed_user_id: int | None = None,
) -> Duel:
    """Store a duel before its message is sent."""
    duel = Duel(
        user_id=user_id,
        chat_id=chat_id,
        private=private,
        seed=seed,
        length=length,
        model_a=a.arm.model,
        version_a=a.version,
        temperature_a=a.arm.temperature,
        rng_seed_a=a.rng_seed,
        text_a=a.text,
        model_b=b.arm.model,
        version_b=b.version,
        temperature_b=b.arm.temperature,
        rng_seed_b=b.rng_seed,
        text_b=b.text,
        update_id=update_id,
        seed_user_id=seed_user_id,
    )
    session.add(duel)
    await session.flush()
    return duel


async def set_duel_message(
    session: AsyncSession, *, duel_id: int, message_id: int, sent_at: datetime | None = None
) -> None:
    """Record the message the duel was sent as, and when."""
    duel = await session.get(Duel, duel_id)
    if duel is not None:
        duel.telegram_message_id = message_id
        duel.sent_at = sent_at or utcnow()


@dataclass(frozen=True)
class DuelOrigin:
    """A duel with its chat's Telegram id: what a button press is checked against."""

    duel: Duel
    chat_telegram_id: int


async def get_duel_origin(session: AsyncSession, *, duel_id: int) -> DuelOrigin | None:
    """The duel and its chat's Telegram id, if it still exists."""
    row = (
        await session.execute(
            select(Duel, Chat.telegram_id).join(Chat, Duel.chat_id == Chat.id).where(Duel.id == duel_id)
        )
    ).one_or_none()
    return None if row is None else DuelOrigin(row[0], int(row[1]))


@dataclass(frozen=True)
class VoteResult:
    """What a press did: the stored outcome, whether it counts, and whether it changed one."""

    outcome: Outcome
    counted: bool
    changed: bool
    early: bool
    capped: bool
    final: bool = False  # a counted vote was there already: it stays as it was


def day_start(now: datetime) -> datetime:
    """Midnight UTC of `now`'s day: the daily cap's window."""
    moment = now.astimezone(UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


async def counted_today(session: AsyncSession, *, user_id: int, now: datetime) -> int:
    """The user's counted votes first cast today (UTC)."""
    stmt = select(func.count()).where(
        DuelVote.user_id == user_id, DuelVote.counted, DuelVote.created_at >= day_start(now)
    )
    return int(await session.scalar(stmt) or 0)


async def _lock_voter(session: AsyncSession, user_id: int) -> None:
    """Hold the voter's ``users`` row until the transaction ends, so one user's votes run one
    after another: the read of their vote and the count against the daily cap below cannot
    race a concurrent press. FOR NO KEY UPDATE (PostgreSQL) still lets other transactions
    insert rows that merely reference the user; SQLite ignores the clause (one writer anyway).
    """
    await session.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))


async def _store_vote(
    session: AsyncSession, *, duel_id: int, user_id: int, outcome: Outcome, counted: bool
) -> DuelVote | None:
    """Insert the vote, or replace an uncounted one; None when a counted vote stands.

    One INSERT .. ON CONFLICT, so even a press that slipped past the lock cannot fail on the
    primary key; the WHERE keeps a counted vote final. RETURNING refreshes a DuelVote this
    session has loaded already.
    """
    now = utcnow()
    stmt = dialect_insert(session, DuelVote).values(
        duel_id=duel_id, user_id=user_id, outcome=outcome.value, counted=counted, updated_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[DuelVote.duel_id, DuelVote.user_id],
        # created_at stays: the daily cap counts a vote on the day it was first cast.
        set_={"outcome": stmt.excluded.outcome, "counted": stmt.excluded.counted, "updated_at": now},
        where=~DuelVote.counted,
    ).returning(DuelVote)
    found = await session.scalars(stmt, execution_options={"populate_existing": True})
    return found.one_or_none()


async def cast_vote(
    session: AsyncSession,
    *,
    duel: Duel,
    user_id: int,
    outcome: Outcome,
    min_delay_s: float,
    daily_cap: int,
    now: datetime | None = None,
) -> VoteResult:
    """Store the user's vote on a duel.

    A first vote counts unless it came under `min_delay_s` after the message was sent (nobody
    reads two texts that fast) or the user already has `daily_cap` counted votes today. A
    counted vote is final (its voter has seen the arms): a later press changes nothing. An
    uncounted one is replaced and judged again as if new. Safe under concurrent presses: the
    user's votes are serialised on their ``users`` row and the vote is written with an upsert.
    """
    if outcome.value not in DUEL_OUTCOMES:  # pragma: no cover - the enum and the CHECK agree
        raise ValueError(outcome)
    now = now or utcnow()
    shown_at = duel.sent_at or duel.created_at
    early = (now - shown_at) < timedelta(seconds=min_delay_s)
    await _lock_voter(session, user_id)
    # Under the lock (on PostgreSQL, in a statement snapshot taken after it) these reads see
    # every vote this user committed before.
    key = (DuelVote.duel_id == duel.id, DuelVote.user_id == user_id)
    previous = (await session.execute(select(DuelVote.outcome, DuelVote.counted).where(*key))).one_or_none()
    if previous is not None and previous.counted:
        return VoteResult(Outcome(previous.outcome), True, False, False, False, final=True)
    changed = previous is not None and previous.outcome != outcome.value
    capped = not early and await counted_today(session, user_id=user_id, now=now) >= daily_cap
    counted = not early and not capped
    stored = await _store_vote(session, duel_id=duel.id, user_id=user_id, outcome=outcome, counted=counted)
    if stored is None:  # pragma: no cover - a counted vote appeared despite the lock: it stands
        standing = (await session.execute(select(DuelVote.outcome).where(*key))).scalar_one()
        return VoteResult(Outcome(standing), True, False, False, False, final=True)
    return VoteResult(outcome, counted, changed, early and not counted, capped)


async def counted_votes(session: AsyncSession) -> list[Vote]:
    """Every counted vote as a Vote between arm labels (what bot.ranking fits), oldest first."""
    stmt = (
        select(Duel.model_a, Duel.temperature_a, Duel.model_b, Duel.temperature_b, DuelVote.outcome)
        .join(DuelVote, DuelVote.duel_id == Duel.id)
        .where(DuelVote.counted, _between_arms())
        .order_by(DuelVote.created_at, DuelVote.duel_id)
    )
    return [
        Vote(Arm(ma, ta).label, Arm(mb, tb).label, Outcome(outcome))
        for ma, ta, mb, tb, outcome in (await session.execute(stmt)).all()
    ]


async def thumbs_per_temperature(session: AsyncSession) -> list[tuple[float, int, int]]:
    """(temperature, 👍, 👎) summed over ordinary samples, lowest temperature first."""
    stmt = (
        select(StoredSample.temperature, func.sum(StoredSample.up_votes), func.sum(StoredSample.down_votes))
        .group_by(StoredSample.temperature)
        .order_by(StoredSample.temperature)
    )
    return [(float(t), int(up or 0), int(down or 0)) for t, up, down in (await session.execute(stmt)).all()]


# Each counted challenger-duel vote, scored for the challenger: the side it wrote won, tied,
# or lost; "both bad" compares nothing.
_CHALLENGER_SCORE = {("a", "a"): 1.0, ("a", "b"): 0.0, ("b", "b"): 1.0, ("b", "a"): 0.0}


async def challenger_scores(
    session: AsyncSession, *, name: str, champion: str, challenger: str
) -> list[float]:
    """The challenger's scores against the champion (1 win, 1/2 tie, 0 loss), oldest vote
    first, from counted votes on duels between exactly these two versions of `name`."""
    versions = (champion, challenger)
    stmt = (
        select(Duel.version_a, DuelVote.outcome)
        .join(DuelVote, DuelVote.duel_id == Duel.id)
        .where(
            DuelVote.counted,
            Duel.model_a == name,
            Duel.model_b == name,
            Duel.temperature_a == Duel.temperature_b,
            Duel.version_a.in_(versions),
            Duel.version_b.in_(versions),
            Duel.version_a != Duel.version_b,
        )
        .order_by(DuelVote.created_at, DuelVote.duel_id)
    )
    scores = []
    for version_a, outcome in (await session.execute(stmt)).all():
        side = "a" if version_a == challenger else "b"
        if outcome == Outcome.TIE.value:
            scores.append(0.5)
        elif (side, outcome) in _CHALLENGER_SCORE:
            scores.append(_CHALLENGER_SCORE[(side, outcome)])
    return scores
