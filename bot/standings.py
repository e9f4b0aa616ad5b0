"""The leaderboard's data, table and picture: shared by /leaderboard and `lstmbot leaderboard`.

Strengths come from counted duel votes only (bot.ranking); the second panel is the 👍 share
per temperature from ordinary samples' ratings.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chart import TemperatureVotes, leaderboard_png
from bot.db.models import DuelVote
from bot.db.outcomes import Vote
from bot.db.repository import duels as dr
from bot.promotion import Standing
from bot.ranking import ArmStrength, leaderboard
from bot.texts import text


@dataclass(frozen=True)
class Standings:
    """Everything the leaderboard shows."""

    votes: list[Vote]
    board: list[ArmStrength]
    thumbs: list[TemperatureVotes]


async def load_votes(session: AsyncSession) -> tuple[list[Vote], list[TemperatureVotes]]:
    """The counted duel votes and the 👍/👎 per temperature (one read transaction)."""
    votes = await dr.counted_votes(session)
    thumbs = [TemperatureVotes(t, up, down) for t, up, down in await dr.thumbs_per_temperature(session)]
    return votes, thumbs


async def version(session: AsyncSession) -> tuple[object, ...]:
    """What the standings depend on, read cheaply: the counted votes' number and last change,
    and the 👍/👎 per temperature. Equal versions mean equal standings."""
    count, latest = (
        await session.execute(select(func.count(), func.max(DuelVote.updated_at)).where(DuelVote.counted))
    ).one()
    return (count, latest, tuple(await dr.thumbs_per_temperature(session)))


def compute(votes: list[Vote], thumbs: list[TemperatureVotes], *, rounds: int = 200) -> Standings:
    """Fit the strengths (CPU work: run it off the event loop)."""
    return Standings(votes, leaderboard(votes, rounds=rounds), thumbs)


def table(standings: Standings, lang: str) -> str:
    """The compact table as Telegram HTML (arm names escaped)."""
    if not standings.board:
        return text(lang, "leaderboard_none")
    lines = [text(lang, "leaderboard_title", votes=len(standings.votes)), text(lang, "leaderboard_head")]
    for rank, row in enumerate(standings.board, start=1):
        lines.append(
            text(
                lang,
                "leaderboard_line",
                rank=rank,
                arm=html.escape(row.arm, quote=False),
                strength=row.strength,
                low=row.low,
                high=row.high,
                duels=row.duels,
                bad=row.both_bad_rate,
            )
        )
    return "\n".join(lines)


def challenger_line(lang: str, name: str, version: str, where: Standing, alpha: float) -> str:
    """Where a model's challenger stands in its blind duels against the champion, one line
    (Telegram HTML): /leaderboard's and `lstmbot leaderboard`'s."""
    state = (
        text(lang, "challenger_deciding", needed=f"{1 / alpha:.0f}")
        if where.verdict == "continue"
        else where.reason
    )
    return text(
        lang,
        "leaderboard_challenger",
        model=html.escape(name, quote=False),
        version=html.escape(version, quote=False),
        votes=where.votes,
        rate=f"{where.win_rate:.0%}" if where.votes else "–",
        state=state,
    )


def picture(standings: Standings, title: str) -> bytes:
    """The two-panel chart as PNG bytes."""
    return leaderboard_png(standings.board, standings.thumbs, title=title)


def plain(html_text: str) -> str:
    """A table from `table` as plain text, for the terminal."""
    return html.unescape(re.sub(r"</?b>", "", html_text))
