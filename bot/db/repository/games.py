""" "Real or dream?" storage: games, guesses, leaderboards and the fooled share per model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Integer, and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Chat, Game, Guess, User, utcnow
from bot.db.repository.base import rowcount


@dataclass(frozen=True)
class Score:
    """One player's results in a chat."""

    name: str
    right: int
    played: int


@dataclass(frozen=True)
class Fooled:
    """Votes for the model's ending (fooled) out of all votes, for one model and temperature."""

    model: str
    temperature: float
    fooled: int
    votes: int


async def open_game(session: AsyncSession, *, chat_id: int) -> Game | None:
    """The chat's game not yet revealed, if any."""
    stmt = select(Game).where(Game.chat_id == chat_id, Game.revealed_at.is_(None)).order_by(Game.id)
    return (await session.scalars(stmt.limit(1))).first()


@dataclass(frozen=True)
class DrivenGame:
    """An open game a timer drives, with its chat's Telegram id and its vote count."""

    game: Game
    chat_telegram_id: int
    votes: int


# How long another replica's timer waits before it takes over a game whose driver went silent.
TIMER_LEASE = timedelta(seconds=20)


def _open() -> ColumnElement[bool]:
    return Game.revealed_at.is_(None)


async def driven_games(session: AsyncSession, *, replica: str) -> list[DrivenGame]:
    """The open games `replica` drives, with their chat and votes, soonest deadline first:
    the timer's scan, one query however many games are open."""
    votes = (
        select(func.count())
        .select_from(Guess)
        .where(Guess.game_id == Game.id)
        .correlate(Game)
        .scalar_subquery()
    )
    stmt = (
        select(Game, Chat.telegram_id, votes)
        .join(Chat, Chat.id == Game.chat_id)
        .where(_open(), Game.timer_replica == replica)
        .order_by(Game.deadline)
    )
    return [DrivenGame(game, int(chat), int(n)) for game, chat, n in (await session.execute(stmt)).all()]


async def game_drivers(session: AsyncSession) -> list[tuple[str | None, datetime | None]]:
    """(driver, its earliest lease end) over the open games: whether a timer must `drive`
    (a read: an idle bot takes no write lock)."""
    stmt = select(Game.timer_replica, func.min(Game.timer_until)).where(_open()).group_by(Game.timer_replica)
    return [(driver, until) for driver, until in (await session.execute(stmt)).all()]


async def drive(
    session: AsyncSession, *, replica: str, now: datetime, lease: timedelta, dead: Sequence[str] = ()
) -> int:
    """Take (or keep) the open games that are ours, undriven, or whose driver's lease ran out
    or whose driver is known dead, until now + lease; one statement, so two replicas never
    both win a game. Returns how many games `replica` drives now."""
    result = await session.execute(
        update(Game)
        .where(
            _open(),
            or_(
                Game.timer_replica.is_(None),
                Game.timer_replica == replica,
                Game.timer_until < now,
                Game.timer_replica.in_(list(dead)),
            ),
        )
        .values(timer_replica=replica, timer_until=now + lease)
    )
    return rowcount(result)


@dataclass(frozen=True)
class GameOrigin:
    """A game with its chat's Telegram id: what a vote press is checked against."""

    game: Game
    chat_telegram_id: int


async def get_game_origin(session: AsyncSession, *, game_id: int) -> GameOrigin | None:
    """The game and its chat's Telegram id, if it exists."""
    row = (
        await session.execute(
            select(Game, Chat.telegram_id).join(Chat, Game.chat_id == Chat.id).where(Game.id == game_id)
        )
    ).one_or_none()
    return None if row is None else GameOrigin(row[0], int(row[1]))


async def create_game(session: AsyncSession, **values: object) -> Game:
    """Store a new game; the caller checked the chat has none open."""
    game = Game(**values)
    session.add(game)
    await session.flush()
    return game


async def set_game_message(session: AsyncSession, *, game_id: int, message_id: int) -> None:
    """Remember the game's message, which the countdown and the reveal edit."""
    await session.execute(update(Game).where(Game.id == game_id).values(telegram_message_id=message_id))


async def guess(session: AsyncSession, *, game_id: int, user_id: int, choice: str) -> bool:
    """Record (or change) a vote while the game is open; False when it is over."""
    game = await session.get(Game, game_id, with_for_update=True)
    if game is None or game.revealed_at is not None or game.deadline <= utcnow():
        return False
    existing = await session.get(Guess, (game_id, user_id))
    if existing is None:
        session.add(Guess(game_id=game_id, user_id=user_id, choice=choice))
    else:
        existing.choice, existing.guessed_at = choice, utcnow()
    await session.flush()
    return True


async def finish(session: AsyncSession, *, game_id: int, stopped: bool = False) -> Game | None:
    """Mark the game revealed; None when it already was (only one caller reveals a game)."""
    result = await session.execute(
        update(Game)
        .where(Game.id == game_id, Game.revealed_at.is_(None))
        .values(revealed_at=utcnow(), stopped=stopped)
    )
    if getattr(result, "rowcount", 0) != 1:
        return None
    return await session.get(Game, game_id, populate_existing=True)


async def guesses_of(session: AsyncSession, *, game_id: int) -> list[tuple[int, str, str]]:
    """(user id, display name, choice) of every vote, in the order they came."""
    stmt = (
        select(User.id, User.display_name, Guess.choice)
        .join(User, User.id == Guess.user_id)
        .where(Guess.game_id == game_id)
        .order_by(Guess.guessed_at)
    )
    return [(uid, name or "?", choice) for uid, name, choice in (await session.execute(stmt)).all()]


async def scores(
    session: AsyncSession, *, chat_id: int, since: datetime | None = None, limit: int = 10
) -> list[Score]:
    """The chat's leaderboard over revealed, not stopped games (since a time, or all time)."""
    right = func.sum(case((Guess.choice == Game.real_is, 1), else_=0), type_=Integer)
    conditions = [Game.chat_id == chat_id, Game.revealed_at.is_not(None), Game.stopped.is_(False)]
    if since is not None:
        conditions.append(Game.started_at >= since)
    stmt = (
        select(User.display_name, right.label("right"), func.count().label("played"))
        .select_from(Guess)
        .join(Game, Game.id == Guess.game_id)
        .join(User, User.id == Guess.user_id)
        .where(and_(*conditions))
        .group_by(User.id, User.display_name)
        .order_by(right.desc(), func.count().asc(), User.display_name)
        .limit(limit)
    )
    return [Score(name or "?", int(r or 0), int(p)) for name, r, p in (await session.execute(stmt)).all()]


async def fooled_by_model(session: AsyncSession) -> list[Fooled]:
    """Per (model, temperature): votes for the model's ending out of all votes (revealed games)."""
    fooled = func.sum(case((Guess.choice != Game.real_is, 1), else_=0), type_=Integer)
    stmt = (
        select(Game.model_name, Game.temperature, fooled, func.count())
        .select_from(Guess)
        .join(Game, Game.id == Guess.game_id)
        .where(Game.revealed_at.is_not(None), Game.stopped.is_(False))
        .group_by(Game.model_name, Game.temperature)
        .order_by(Game.model_name, Game.temperature)
    )
    return [Fooled(m, float(t), int(f or 0), int(n)) for m, t, f, n in (await session.execute(stmt)).all()]
