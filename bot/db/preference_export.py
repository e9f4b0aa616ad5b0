"""Preference exports in the shapes TRL's trainers read, as JSON lines.

KTO (``KTOTrainer``): ``{"prompt", "completion", "label"}`` per rated sample: label true when
👍 outnumber 👎, false when 👎 do; ties are skipped, and ``strict`` keeps unanimous ones only.
DPO (``DPOTrainer``): ``{"prompt", "chosen", "rejected"}`` per duel whose counted votes
prefer one side (A or B wins counted; ties and "both bad" never pick a side).

Every row also says how each text was made (model, bundle version, temperature, rng seed) and
whose it was: a salted hash of the author's Telegram id, or the id itself with
``include_users``. Samples never shared, and duels made in private chats, stay out unless
``include_private``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Literal, TextIO

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Duel, DuelVote, StoredSample, User
from bot.logs import user_hash

PreferenceFormat = Literal["kto", "dpo"]
PREFERENCE_FORMATS: tuple[PreferenceFormat, ...] = ("kto", "dpo")
BATCH = 500


def _who(telegram_id: int, *, include_users: bool, salt: str) -> dict[str, Any]:
    return {"user_telegram_id": telegram_id} if include_users else {"user": user_hash(telegram_id, salt)}


async def kto_rows(
    session: AsyncSession,
    *,
    strict: bool = False,
    include_users: bool = False,
    include_private: bool = False,
    salt: str = "",
) -> AsyncIterator[dict[str, Any]]:
    """One row per sample with a verdict, oldest first."""
    stmt = (
        select(StoredSample, User.telegram_id)
        .join(User, StoredSample.user_id == User.id)
        .where(StoredSample.up_votes != StoredSample.down_votes)
    )
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


async def write_preferences(
    session: AsyncSession,
    out: TextIO,
    *,
    format: PreferenceFormat,
    strict: bool = False,
    include_users: bool = False,
    include_private: bool = False,
    salt: str = "",
) -> int:
    """Write KTO or DPO rows as JSON lines; returns the row count."""
    if format == "kto":
        rows = kto_rows(
            session, strict=strict, include_users=include_users, include_private=include_private, salt=salt
        )
    elif format == "dpo":
        rows = dpo_rows(session, include_users=include_users, include_private=include_private, salt=salt)
    else:
        raise ValueError(f"format must be one of {', '.join(PREFERENCE_FORMATS)}, got {format!r}")
    count = 0
    async for row in rows:
        out.write(json.dumps(row, ensure_ascii=False))
        out.write("\n")
        count += 1
    return count
