"""Preference exports in the shapes TRL's trainers read, as JSON lines.

KTO (``KTOTrainer``): ``{"prompt", "completion", "label"}`` per rated sample: label true when
👍 outnumber 👎, false when 👎 do; ties are skipped, and ``strict`` keeps unanimous ones only.
DPO (``DPOTrainer``): ``{"prompt", "chosen", "rejected"}`` per duel whose counted votes
prefer one side (A or B wins counted; ties and "both bad" never pick a side), and, with
``inline``, per inline pick: the continuation the user sent over each other one offered with
it (the same seed, other temperatures).

Every row also says how each text was made (model, bundle version, temperature, rng seed) and
whose it was: a salted hash of the author's Telegram id, or the id itself with
``include_users``. Samples never shared, duels made in private chats, and inline picks whose
sent sample was never shared stay out unless ``include_private``. ``since`` and ``until``
keep what was made in [since, until) (a sample's, duel's or offer's `created_at`);
``model_name`` keeps one model's rows (a duel: both sides by that model).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TextIO, TypeVar

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Duel, DuelVote, InlineOffer, StoredSample, User
from bot.logs import user_hash

PreferenceFormat = Literal["kto", "dpo"]
PREFERENCE_FORMATS: tuple[PreferenceFormat, ...] = ("kto", "dpo")
BATCH = 500
_Stmt = TypeVar("_Stmt", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True)
class Scope:
    """Which rows an export keeps: made in [since, until), by one model (None: no limit)."""

    since: datetime | None = None
    until: datetime | None = None
    model_name: str | None = None

    def made(self, stmt: _Stmt, created_at: Any) -> _Stmt:
        """`stmt` limited to rows whose `created_at` lies in the window."""
        if self.since is not None:
            stmt = stmt.where(created_at >= self.since)
        if self.until is not None:
            stmt = stmt.where(created_at < self.until)
        return stmt


EVERYTHING = Scope()


def _who(telegram_id: int, *, include_users: bool, salt: str) -> dict[str, Any]:
    return {"user_telegram_id": telegram_id} if include_users else {"user": user_hash(telegram_id, salt)}


async def kto_rows(
    session: AsyncSession,
    *,
    strict: bool = False,
    include_users: bool = False,
    include_private: bool = False,
    salt: str = "",
    scope: Scope = EVERYTHING,
) -> AsyncIterator[dict[str, Any]]:
    """One row per sample with a verdict, oldest first."""
    stmt = (
        select(StoredSample, User.telegram_id)
        .join(User, StoredSample.user_id == User.id)
        .where(StoredSample.up_votes != StoredSample.down_votes)
    )
    stmt = scope.made(stmt, StoredSample.created_at)
    if scope.model_name is not None:
        stmt = stmt.where(StoredSample.model_name == scope.model_name)
    if strict:  # unanimous: one side has every vote
        stmt = stmt.where((StoredSample.up_votes == 0) | (StoredSample.down_votes == 0))
    if not include_private:
        stmt = stmt.where(StoredSample.shared)
    result = await session.stream(stmt.order_by(StoredSample.id).execution_options(yield_per=BATCH))
    try:
        async for sample, telegram_id in result:
            yield {
                "prompt": sample.seed,
                "completion": sample.text,
                "label": sample.up_votes > sample.down_votes,
                "model": sample.model_name,
                "model_version": sample.model_version,
                "temperature": sample.temperature,
                "rng_seed": sample.rng_seed,
                "up_votes": sample.up_votes,
                "down_votes": sample.down_votes,
                "shared": sample.shared,
                **_who(int(telegram_id), include_users=include_users, salt=salt),
            }
    finally:
        await result.close()


def _side(duel: Duel, side: str) -> dict[str, Any]:
    return {
        "model": getattr(duel, f"model_{side}"),
        "model_version": getattr(duel, f"version_{side}"),
        "temperature": getattr(duel, f"temperature_{side}"),
        "rng_seed": getattr(duel, f"rng_seed_{side}"),
        "text": getattr(duel, f"text_{side}"),
    }


async def dpo_rows(
    session: AsyncSession,
    *,
    include_users: bool = False,
    include_private: bool = False,
    salt: str = "",
    scope: Scope = EVERYTHING,
) -> AsyncIterator[dict[str, Any]]:
    """One row per duel whose counted votes for A and for B differ, oldest first."""
    a_votes = func.sum(case((DuelVote.outcome == "a", 1), else_=0)).label("a_votes")
    b_votes = func.sum(case((DuelVote.outcome == "b", 1), else_=0)).label("b_votes")
    tally = (
        select(DuelVote.duel_id, a_votes, b_votes)
        .where(DuelVote.counted)
        .group_by(DuelVote.duel_id)
        .subquery()
    )
    stmt = (
        select(Duel, User.telegram_id, tally.c.a_votes, tally.c.b_votes)
        .join(tally, tally.c.duel_id == Duel.id)
        .join(User, Duel.user_id == User.id)
        .where(tally.c.a_votes != tally.c.b_votes)
    )
    stmt = scope.made(stmt, Duel.created_at)
    if scope.model_name is not None:
        stmt = stmt.where(Duel.model_a == scope.model_name, Duel.model_b == scope.model_name)
    if not include_private:
        stmt = stmt.where(Duel.private.is_(False))
    result = await session.stream(stmt.order_by(Duel.id).execution_options(yield_per=BATCH))
    try:
        async for duel, telegram_id, a, b in result:
            won, lost = ("a", "b") if a > b else ("b", "a")
            chosen, rejected = _side(duel, won), _side(duel, lost)
            yield {
                "prompt": duel.seed,
                "chosen": chosen.pop("text"),
                "rejected": rejected.pop("text"),
                **{f"chosen_{key}": value for key, value in chosen.items()},
                **{f"rejected_{key}": value for key, value in rejected.items()},
                "chosen_votes": max(int(a), int(b)),
                "rejected_votes": min(int(a), int(b)),
                "duel_id": duel.id,
                **_who(int(telegram_id), include_users=include_users, salt=salt),
            }
    finally:
        await result.close()


async def inline_rows(
    session: AsyncSession,
    *,
    include_users: bool = False,
    include_private: bool = False,
    salt: str = "",
    scope: Scope = EVERYTHING,
) -> AsyncIterator[dict[str, Any]]:
    """One DPO row per continuation offered but not sent, for every inline pick, oldest first.

    The sent sample's `shared` flag decides privacy: the chat an inline message went to is
    one the bot cannot see, so only its author sharing it makes the seed public."""
    stmt = (
        select(InlineOffer, User.telegram_id)
        .join(User, InlineOffer.user_id == User.id)
        .join(StoredSample, InlineOffer.sample_id == StoredSample.id)
        .where(InlineOffer.chosen.is_not(None))
    )
    stmt = scope.made(stmt, InlineOffer.created_at)
    if scope.model_name is not None:
        stmt = stmt.where(InlineOffer.model_name == scope.model_name)
    if not include_private:
        stmt = stmt.where(StoredSample.shared)
    result = await session.stream(stmt.order_by(InlineOffer.id).execution_options(yield_per=BATCH))
    try:
        async for offer, telegram_id in result:
            candidates = list(offer.candidates or [])
            if offer.chosen is None or not 0 <= offer.chosen < len(candidates):
                continue
            chosen = candidates[offer.chosen]
            for index, other in enumerate(candidates):
                if index == offer.chosen or other.get("text") == chosen.get("text"):
                    continue  # the same text on both sides prefers nothing
                yield {
                    "prompt": offer.seed,
                    "chosen": str(chosen.get("text", "")),
                    "rejected": str(other.get("text", "")),
                    **_offered(offer, chosen, "chosen"),
                    **_offered(offer, other, "rejected"),
                    "inline_offer_id": offer.id,
                    **_who(int(telegram_id), include_users=include_users, salt=salt),
                }
    finally:
        await result.close()


def _offered(offer: InlineOffer, candidate: dict[str, Any], side: str) -> dict[str, Any]:
    return {
        f"{side}_model": offer.model_name,
        f"{side}_model_version": offer.model_version,
        f"{side}_temperature": candidate.get("temperature"),
        f"{side}_rng_seed": candidate.get("rng_seed"),
    }


async def write_preferences(
    session: AsyncSession,
    out: TextIO,
    *,
    format: PreferenceFormat,
    strict: bool = False,
    include_users: bool = False,
    include_private: bool = False,
    inline: bool = False,
    salt: str = "",
    scope: Scope = EVERYTHING,
) -> int:
    """Write KTO or DPO rows (with `inline`, DPO rows of inline picks too) as JSON lines;
    returns the row count."""
    users, private = include_users, include_private
    if format == "kto":
        rows = kto_rows(
            session, strict=strict, include_users=users, include_private=private, salt=salt, scope=scope
        )
        return await _write(out, rows)
    if format == "dpo":
        duels = dpo_rows(session, include_users=users, include_private=private, salt=salt, scope=scope)
        count = await _write(out, duels)
        if inline:
            picks = inline_rows(session, include_users=users, include_private=private, salt=salt, scope=scope)
            count += await _write(out, picks)
        return count
    raise ValueError(f"format must be one of {', '.join(PREFERENCE_FORMATS)}, got {format!r}")


@dataclass(frozen=True)
class Gathered:
    """How many rows of each kind a learning round's file holds, and of which verdict."""

    ratings: int  # KTO rows: samples rated by buttons and reactions
    duels: int  # DPO rows from duel votes
    inline_picks: int  # DPO rows from inline picks (one per continuation not sent)
    liked: int  # KTO rows labelled true
    disliked: int  # KTO rows labelled false

    @property
    def rows(self) -> int:
        """Every row written."""
        return self.ratings + self.duels + self.inline_picks

    def as_dict(self) -> dict[str, int]:
        """JSON-ready form."""
        return {
            "rows": self.rows,
            "ratings": self.ratings,
            "liked": self.liked,
            "disliked": self.disliked,
            "duels": self.duels,
            "inline_picks": self.inline_picks,
        }


async def write_learning_rows(
    session: AsyncSession, out: TextIO, *, scope: Scope, include_private: bool = False, salt: str = ""
) -> Gathered:
    """Every preference in `scope` as one JSON Lines file train/kto.py reads: the KTO rows of
    rated samples, then the DPO rows of duels and of inline picks."""
    liked = disliked = 0

    async def counted(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
        nonlocal liked, disliked
        async for row in rows:
            liked += row["label"] is True
            disliked += row["label"] is False
            yield row

    private = include_private
    ratings = await _write(out, counted(kto_rows(session, include_private=private, salt=salt, scope=scope)))
    duels = await _write(out, dpo_rows(session, include_private=private, salt=salt, scope=scope))
    picks = await _write(out, inline_rows(session, include_private=private, salt=salt, scope=scope))
    return Gathered(ratings, duels, picks, liked, disliked)


async def _write(out: TextIO, rows: AsyncIterator[dict[str, Any]]) -> int:
    count = 0
    async for row in rows:
        out.write(json.dumps(row, ensure_ascii=False))
        out.write("\n")
        count += 1
    return count
