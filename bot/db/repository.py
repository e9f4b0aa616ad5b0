"""Everything handlers read or write, as keyword-only functions taking the session explicitly.

Functions never commit: the caller owns the transaction (normally one
``Database.run(lambda session: ...)`` per update, which commits and retries on transient
errors). Ids named ``user_id``/``chat_id``/``sample_id`` are this database's own primary keys;
Telegram's ids are always called ``telegram_id``/``message_id``.

Ratings and vote counts: ``samples.up_votes``/``down_votes`` mirror the ``ratings`` rows so
a keyboard reads them with one primary-key lookup. Every rating change first locks the sample
row (``FOR NO KEY UPDATE`` on PostgreSQL; SQLite's write lock already serialises writers),
then changes the rating with an upsert and recounts that sample's ratings, all in one
transaction. Concurrent clicks on one sample therefore queue on the lock, never create a
second row (the primary key is (sample_id, user_id) and the write is INSERT .. ON CONFLICT)
and never leave the counters out of step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final

from sqlalchemy import ColumnElement, delete, false, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import (
    CHAT_TYPES,
    DOWN,
    UP,
    Chat,
    ProcessedUpdate,
    Rating,
    StoredSample,
    User,
    utcnow,
)
from core.limits import DEFAULT_TEMPERATURE, MAX_LENGTH, MAX_TEMPERATURE, MIN_LENGTH, MIN_TEMPERATURE

MAX_MODEL_NAME = 128


class StorageError(Exception):
    """Base class for errors the repository raises on purpose."""


class NotFound(StorageError, LookupError):
    """The row asked for does not exist (e.g. a sample deleted before its button was pressed)."""


class _Unset(Enum):
    """Marks "leave this setting alone" where None means "clear the override"."""

    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET


@dataclass(frozen=True, slots=True)
class Votes:
    """A sample's rating aggregate."""

    up: int
    down: int

    @property
    def net(self) -> int:
        """Up-votes minus down-votes."""
        return self.up - self.down

    @property
    def total(self) -> int:
        """How many people rated it."""
        return self.up + self.down


@dataclass(frozen=True, slots=True)
class RatingState:
    """The result of a rating action: this user's score now and the sample's counts."""

    sample_id: int
    score: int | None  # +1, -1, or None when the user has no rating on it now
    votes: Votes
    changed: bool  # False when the click repeated the current state (idempotent no-op)


@dataclass(frozen=True, slots=True)
class GenerationSettings:
    """The settings a generation request in a given chat should use."""

    temperature: float
    length: int | None  # None: not chosen anywhere, so the model level's default
    model_name: str


@dataclass(frozen=True, slots=True)
class UserStats:
    """What /stats shows a user about themselves."""

    samples: int
    ratings_given: int
    up_received: int
    down_received: int
    first_sample_at: datetime | None
    last_sample_at: datetime | None


@dataclass(frozen=True, slots=True)
class ModelStats:
    """Per-model line of the admin stats."""

    model_name: str
    samples: int
    up_votes: int
    down_votes: int
    avg_generation_ms: float


@dataclass(frozen=True, slots=True)
class AdminStats:
    """Whole-database numbers for the admin's /stats."""

    users: int
    chats: dict[str, int]  # chat type -> count
    samples: int
    delivered_samples: int
    samples_last_24h: int
    ratings: int
    up_votes: int
    down_votes: int
    models: list[ModelStats]


@dataclass(frozen=True, slots=True)
class ForgetResult:
    """What /forget removed."""

    found: bool
    samples_deleted: int
    ratings_deleted: int
    chats_deleted: int


# --- helpers ---------------------------------------------------------------------------------


def _insert(session: AsyncSession, model: type[Any]) -> Any:
    """The dialect's INSERT construct, which offers ON CONFLICT on SQLite and PostgreSQL."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return pg_insert(model)
    if name == "sqlite":
        return sqlite_insert(model)
    raise StorageError(f"unsupported database backend {name!r}")  # pragma: no cover


def check_temperature_setting(value: float) -> float:
    """Validate a temperature a user may choose (and the schema stores); returns it as a float."""
    value = float(value)
    if not math.isfinite(value) or not MIN_TEMPERATURE <= value <= MAX_TEMPERATURE:
        raise ValueError(
            f"temperature must be between {MIN_TEMPERATURE:g} and {MAX_TEMPERATURE:g}, got {value:g}"
        )
    return value


def check_length(value: int) -> int:
    """Validate a sample length (tokens) against the stored range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"length must be a whole number, got {value!r}")
    if not MIN_LENGTH <= value <= MAX_LENGTH:
        raise ValueError(f"length must be between {MIN_LENGTH} and {MAX_LENGTH}, got {value}")
    return value


def check_model_name(value: str) -> str:
    """Validate a model bundle name."""
    value = value.strip()
    if not value or len(value) > MAX_MODEL_NAME:
        raise ValueError(f"model name must be 1 to {MAX_MODEL_NAME} characters")
    return value


def check_score(value: int) -> int:
    """Validate a rating score (+1 or -1)."""
    if value not in (UP, DOWN) or isinstance(value, bool):
        raise ValueError(f"score must be {UP} or {DOWN}, got {value!r}")
    return value


def _check_chat_type(value: str) -> str:
    if value not in CHAT_TYPES:
        raise ValueError(f"chat type must be one of {', '.join(CHAT_TYPES)}, got {value!r}")
    return value


# --- users -----------------------------------------------------------------------------------


async def get_user(session: AsyncSession, *, telegram_id: int) -> User | None:
    """The user with this Telegram id, if known."""
    return await session.scalar(select(User).where(User.telegram_id == telegram_id))


async def get_or_create_user(
    session: AsyncSession,
    *,
    telegram_id: int,
    display_name: str | None = None,
    language_code: str | None = None,
) -> User:
    """The user with this Telegram id, created on first sight; name and language refreshed.

    Safe under concurrency: two updates from a new user racing both end up with the same row
    (INSERT .. ON CONFLICT DO NOTHING, then read it back).
    """
    user = await get_user(session, telegram_id=telegram_id)
    if user is None:
        now = utcnow()
        stmt = _insert(session, User).values(
            telegram_id=telegram_id,
            display_name=display_name,
            language_code=language_code,
            created_at=now,
            updated_at=now,
        )
        await session.execute(stmt.on_conflict_do_nothing(index_elements=[User.telegram_id]))
        user = await get_user(session, telegram_id=telegram_id)
        assert user is not None, "a user row must exist after the upsert"
        return user
    # Only write when something changed, so that a busy user does not cost a write per message.
    if display_name is not None and user.display_name != display_name:
        user.display_name = display_name
    if language_code is not None and user.language_code != language_code:
        user.language_code = language_code
    if session.is_modified(user):
        await session.flush()
    return user


async def _load_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    return user


async def set_user_temperature(session: AsyncSession, *, user_id: int, temperature: float) -> User:
    """Set a user's softmax temperature (0..2); raises ValueError when out of range."""
    user = await _load_user(session, user_id)
    user.temperature = check_temperature_setting(temperature)
    await session.flush()
    return user


async def set_user_length(session: AsyncSession, *, user_id: int, length: int) -> User:
    """Set a user's sample length in tokens; raises ValueError when out of range."""
    user = await _load_user(session, user_id)
    user.sample_length = check_length(length)
    await session.flush()
    return user


async def set_user_model(session: AsyncSession, *, user_id: int, model_name: str | None) -> User:
    """Choose a user's model bundle by name; None returns them to the bot's default."""
    user = await _load_user(session, user_id)
    user.model_name = None if model_name is None else check_model_name(model_name)
    await session.flush()
    return user


# --- chats -----------------------------------------------------------------------------------


async def get_chat(session: AsyncSession, *, telegram_id: int) -> Chat | None:
    """The chat with this Telegram id, if known."""
    return await session.scalar(select(Chat).where(Chat.telegram_id == telegram_id))


async def get_or_create_chat(
    session: AsyncSession, *, telegram_id: int, type: str, title: str | None = None
) -> Chat:
    """The chat with this Telegram id, created on first sight; type and title refreshed.

    ``type`` is Telegram's chat type: private, group, supergroup or channel (a group becomes
    a supergroup under a new id, so it simply appears as a new chat).
    """
    _check_chat_type(type)
    chat = await get_chat(session, telegram_id=telegram_id)
    if chat is None:
        now = utcnow()
        stmt = _insert(session, Chat).values(
            telegram_id=telegram_id, type=type, title=title, created_at=now, updated_at=now
        )
        await session.execute(stmt.on_conflict_do_nothing(index_elements=[Chat.telegram_id]))
        chat = await get_chat(session, telegram_id=telegram_id)
        assert chat is not None, "a chat row must exist after the upsert"
        return chat
    if chat.type != type:
        chat.type = type
    if title is not None and chat.title != title:
        chat.title = title
    if session.is_modified(chat):
        await session.flush()
    return chat


async def set_group_defaults(
    session: AsyncSession,
    *,
    chat_id: int,
    temperature: float | _Unset | None = UNSET,
    length: int | _Unset | None = UNSET,
    model_name: str | _Unset | None = UNSET,
) -> Chat:
    """Set or clear (None) a group's defaults; arguments left out are not touched."""
    chat = await session.get(Chat, chat_id)
    if chat is None:
        raise NotFound(f"no chat with id {chat_id}")
    if temperature is not UNSET:
        chat.temperature = None if temperature is None else check_temperature_setting(temperature)
    if length is not UNSET:
        chat.sample_length = None if length is None else check_length(length)
    if model_name is not UNSET:
        chat.model_name = None if model_name is None else check_model_name(model_name)
    await session.flush()
    return chat


def resolve_settings(user: User, chat: Chat | None, *, default_model: str) -> GenerationSettings:
    """The settings to generate with: what the user chose, else the group's default (a group
    admin's /groupdefault), else the bot's. A length left None means the model level's default."""
    group = chat if chat is not None and chat.type != "private" else None
    temperature = user.temperature
    if temperature is None:
        temperature = group.temperature if group and group.temperature is not None else DEFAULT_TEMPERATURE
    length = user.sample_length
    if length is None and group is not None:
        length = group.sample_length
    return GenerationSettings(
        temperature=temperature,
        length=length,
        model_name=user.model_name or (group.model_name if group else None) or default_model,
    )


# --- samples ---------------------------------------------------------------------------------


async def record_sample(
    session: AsyncSession,
    *,
    user_id: int,
    chat_id: int,
    seed: str,
    model_name: str,
    model_version: str,
    temperature: float,
    length: int,
    text: str,
    generation_ms: int,
    rng_seed: int | None = None,
    telegram_message_id: int | None = None,
    delivered: bool = False,
    update_id: int | None = None,
    shared: bool = False,
    inline_message_id: str | None = None,
) -> StoredSample:
    """Store a generated sample and return it with its id (for the rating keyboard).

    ``seed`` is the user's text as sent and ``text`` what the model generated after it.
    The usual flow stores the sample first (delivered=False), sends the message with a
    keyboard built from ``sample.id``, then calls ``set_sample_message_id``.
    """
    if rng_seed is not None and not -(2**63) <= rng_seed < 2**63:
        # BIGINT on both backends; draw seeds with e.g. secrets.randbits(63).
        raise ValueError("rng_seed must fit in a signed 64-bit integer")
    sample = StoredSample(
        user_id=user_id,
        chat_id=chat_id,
        seed=seed,
        model_name=model_name,
        model_version=model_version,
        temperature=check_temperature_setting(temperature),
        length=check_length(length),
        rng_seed=rng_seed,
        text=text,
        generation_ms=max(0, int(generation_ms)),
        telegram_message_id=telegram_message_id,
        delivered=delivered,
        update_id=update_id,
        shared=shared,
        inline_message_id=inline_message_id,
    )
    session.add(sample)
    await session.flush()
    return sample


async def get_sample(session: AsyncSession, *, sample_id: int) -> StoredSample | None:
    """The sample with this id, if it still exists."""
    return await session.get(StoredSample, sample_id)


@dataclass(frozen=True, slots=True)
class SampleOrigin:
    """A sample with the Telegram ids of its chat and author: what a button press is checked
    against."""

    sample: StoredSample
    chat_telegram_id: int
    author_telegram_id: int


async def get_sample_origin(session: AsyncSession, *, sample_id: int) -> SampleOrigin | None:
    """The sample with its chat's and author's Telegram ids, if it still exists."""
    row = (
        await session.execute(
            select(StoredSample, Chat.telegram_id, User.telegram_id)
            .join(Chat, StoredSample.chat_id == Chat.id)
            .join(User, StoredSample.user_id == User.id)
            .where(StoredSample.id == sample_id)
        )
    ).one_or_none()
    return None if row is None else SampleOrigin(row[0], int(row[1]), int(row[2]))


async def set_shared(session: AsyncSession, *, sample_id: int, shared: bool) -> bool:
    """Make a sample public (visible in every private chat's /rate and /top) or private again."""
    result = await session.execute(
        update(StoredSample).where(StoredSample.id == sample_id).values(shared=shared)
    )
    return _rowcount(result) > 0


async def get_sample_by_update(session: AsyncSession, *, update_id: int) -> StoredSample | None:
    """The (newest) sample recorded for Telegram update ``update_id``, if any.

    Lets a handler recognise an update redelivered after a crash. Telegram may reuse update
    ids after a week without updates, so a caller may also want to check ``created_at``.
    """
    stmt = (
        select(StoredSample)
        .where(StoredSample.update_id == update_id)
        .order_by(StoredSample.id.desc())
        .limit(1)
    )
    return await session.scalar(stmt)


async def set_sample_message_id(session: AsyncSession, *, sample_id: int, message_id: int) -> bool:
    """Record the Telegram message a sample was sent as and mark it delivered.

    Returns False when the sample no longer exists (deleted in the meantime).
    """
    result = await session.execute(
        update(StoredSample)
        .where(StoredSample.id == sample_id)
        .values(telegram_message_id=message_id, delivered=True)
    )
    return _rowcount(result) > 0


# --- the outbox ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pending:
    """A stored sample still to be sent, with where to send it and in which language."""

    sample: StoredSample
    chat_telegram_id: int
    language_code: str | None


def _pending_query() -> Any:
    return (
        select(StoredSample, Chat.telegram_id, User.language_code)
        .join(Chat, StoredSample.chat_id == Chat.id)
        .join(User, StoredSample.user_id == User.id)
        .where(
            StoredSample.delivered.is_(False),
            StoredSample.send_uncertain.is_(False),
            StoredSample.telegram_message_id.is_(None),
            StoredSample.inline_message_id.is_(None),
        )
    )


async def pending_samples(
    session: AsyncSession, *, created_after: datetime, limit: int = 100, exclude: Iterable[int] = ()
) -> list[Pending]:
    """Undelivered samples whose send certainly failed, made after ``created_after``, oldest first."""
    stmt = _pending_query().where(StoredSample.created_at > created_after)
    skip = list(exclude)
    if skip:
        stmt = stmt.where(StoredSample.id.not_in(skip))
    rows = (await session.execute(stmt.order_by(StoredSample.created_at, StoredSample.id).limit(limit))).all()
    return [Pending(row[0], int(row[1]), row[2]) for row in rows]


async def pending_samples_of_update(session: AsyncSession, *, update_id: int) -> list[Pending]:
    """The undelivered samples a Telegram update asked for (a redelivered update sends them)."""
    rows = (
        await session.execute(
            _pending_query().where(StoredSample.update_id == update_id).order_by(StoredSample.id)
        )
    ).all()
    return [Pending(row[0], int(row[1]), row[2]) for row in rows]


async def is_pending(session: AsyncSession, *, sample_id: int) -> bool:
    """Whether this sample is (still) waiting to be sent."""
    return await session.scalar(_pending_query().where(StoredSample.id == sample_id)) is not None


async def count_pending_between(session: AsyncSession, *, after: datetime | None, until: datetime) -> int:
    """How many undelivered samples were made in (after, until]: those the outbox gives up on."""
    pending = _pending_query().where(StoredSample.created_at <= until)
    if after is not None:
        pending = pending.where(StoredSample.created_at > after)
    return int(await session.scalar(select(func.count()).select_from(pending.subquery())) or 0)


async def mark_send_uncertain(session: AsyncSession, *, sample_ids: Iterable[int]) -> None:
    """A send of these samples may have reached Telegram: never send them again."""
    ids = list(sample_ids)
    if ids:
        await session.execute(
            update(StoredSample).where(StoredSample.id.in_(ids)).values(send_uncertain=True)
        )


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


# --- ratings ---------------------------------------------------------------------------------


async def _lock_sample(session: AsyncSession, sample_id: int) -> None:
    """Take the sample's row lock for the rest of the transaction; NotFound when it is gone.

    FOR NO KEY UPDATE (PostgreSQL) serialises raters of one sample without blocking inserts
    that merely reference it; SQLite ignores the clause (its write lock is database-wide).
    """
    stmt = select(StoredSample.id).where(StoredSample.id == sample_id).with_for_update(key_share=True)
    if await session.scalar(stmt) is None:
        raise NotFound(f"no sample with id {sample_id}")


async def _count_votes(session: AsyncSession, sample_id: int) -> Votes:
    stmt = select(func.count().filter(Rating.score == UP), func.count().filter(Rating.score == DOWN)).where(
        Rating.sample_id == sample_id
    )
    up, down = (await session.execute(stmt)).one()
    return Votes(int(up), int(down))


async def _store_votes(session: AsyncSession, sample_id: int, votes: Votes) -> None:
    # Literal values (not a subquery) so the ORM can update a loaded StoredSample in place.
    await session.execute(
        update(StoredSample)
        .where(StoredSample.id == sample_id)
        .values(up_votes=votes.up, down_votes=votes.down)
    )


async def _recount_votes(session: AsyncSession, *, sample_ids: Iterable[int]) -> None:
    """Recompute the stored counters of these samples from their ratings."""
    for sample_id in sorted(set(sample_ids)):
        await _store_votes(session, sample_id, await _count_votes(session, sample_id))


async def get_votes(session: AsyncSession, *, sample_id: int) -> Votes:
    """A sample's up/down counts (one primary-key lookup); NotFound when it is gone."""
    row = (
        await session.execute(
            select(StoredSample.up_votes, StoredSample.down_votes).where(StoredSample.id == sample_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"no sample with id {sample_id}")
    return Votes(int(row[0]), int(row[1]))


async def _user_score(session: AsyncSession, *, sample_id: int, user_id: int) -> int | None:
    """This user's score on a sample (+1/-1), or None when they have not rated it."""
    return await session.scalar(
        select(Rating.score).where(Rating.sample_id == sample_id, Rating.user_id == user_id)
    )


async def _set_score(
    session: AsyncSession, *, sample_id: int, user_id: int, score: int | None, toggle: bool
) -> RatingState:
    await _lock_sample(session, sample_id)
    # Under the lock (and, on PostgreSQL, in a statement snapshot taken after it) this read is
    # the latest committed state, so the decision below cannot race another click.
    current = await _user_score(session, sample_id=sample_id, user_id=user_id)
    target = None if toggle and current == score else score
    if target == current:
        return RatingState(sample_id, current, await get_votes(session, sample_id=sample_id), False)
    if target is None:
        await session.execute(delete(Rating).where(Rating.sample_id == sample_id, Rating.user_id == user_id))
    else:
        stmt = _insert(session, Rating).values(
            sample_id=sample_id, user_id=user_id, score=target, rated_at=utcnow()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[Rating.sample_id, Rating.user_id],
            set_={"score": stmt.excluded.score, "rated_at": stmt.excluded.rated_at},
        )
        await session.execute(stmt)
    votes = await _count_votes(session, sample_id)
    await _store_votes(session, sample_id, votes)
    return RatingState(sample_id, target, votes, True)


async def rate(session: AsyncSession, *, sample_id: int, user_id: int, score: int) -> RatingState:
    """Set this user's rating of a sample to ``score`` (+1/-1); repeating it changes nothing."""
    return await _set_score(
        session, sample_id=sample_id, user_id=user_id, score=check_score(score), toggle=False
    )


async def toggle_rating(session: AsyncSession, *, sample_id: int, user_id: int, score: int) -> RatingState:
    """Keyboard semantics: pressing the button matching the current rating withdraws it,
    any other press sets the rating to ``score``."""
    return await _set_score(
        session, sample_id=sample_id, user_id=user_id, score=check_score(score), toggle=True
    )


# --- reading lists ---------------------------------------------------------------------------


async def top_samples(
    session: AsyncSession,
    *,
    chat_id: int | None = None,
    model_name: str | None = None,
    since: datetime | None = None,
    min_net: int = 1,
    limit: int = 10,
    visible_to: int | _Unset | None = UNSET,
) -> list[StoredSample]:
    """The best-rated samples, globally or within one chat and/or one model.

    ``visible_to=user_id`` keeps only what that user may see outside the samples' chats: their
    own samples and shared ones (``visible_to=None``: shared ones only). Ordered by net votes
    (up minus down), then up-votes, then newest. Samples with fewer than ``min_net`` net votes
    are left out, so unrated ones do not fill the list.
    """
    net = StoredSample.up_votes - StoredSample.down_votes
    stmt = select(StoredSample).where(net >= min_net)
    if not isinstance(visible_to, _Unset):
        own: ColumnElement[bool] = StoredSample.user_id == visible_to if visible_to is not None else false()
        stmt = stmt.where(or_(StoredSample.shared.is_(True), own))
    if chat_id is not None:
        stmt = stmt.where(StoredSample.chat_id == chat_id)
    if model_name is not None:
        stmt = stmt.where(StoredSample.model_name == model_name)
    if since is not None:
        stmt = stmt.where(StoredSample.created_at >= since)
    stmt = stmt.order_by(net.desc(), StoredSample.up_votes.desc(), StoredSample.id.desc()).limit(limit)
    return list((await session.scalars(stmt)).all())


async def pick_unrated_sample(
    session: AsyncSession, *, user_id: int, chat_id: int | None
) -> StoredSample | None:
    """A delivered sample this user has not rated and did not write, fewest ratings first.

    ``chat_id`` keeps the choice within one chat; None draws from every chat, but only among
    samples their authors shared (a sample is otherwise visible only where it was made).
    """
    rated = select(Rating.sample_id).where(Rating.user_id == user_id)
    stmt = select(StoredSample).where(
        StoredSample.delivered.is_(True), StoredSample.user_id != user_id, StoredSample.id.not_in(rated)
    )
    if chat_id is not None:
        stmt = stmt.where(StoredSample.chat_id == chat_id)
    else:
        stmt = stmt.where(StoredSample.shared.is_(True))
    stmt = stmt.order_by(
        (StoredSample.up_votes + StoredSample.down_votes).asc(), StoredSample.id.desc()
    ).limit(1)
    return await session.scalar(stmt)


# --- stats -----------------------------------------------------------------------------------


async def user_stats(session: AsyncSession, *, user_id: int) -> UserStats:
    """Counts about one user: samples made, ratings given and received."""
    samples_row = (
        await session.execute(
            select(
                func.count(StoredSample.id),
                func.coalesce(func.sum(StoredSample.up_votes), 0),
                func.coalesce(func.sum(StoredSample.down_votes), 0),
                func.min(StoredSample.created_at),
                func.max(StoredSample.created_at),
            ).where(StoredSample.user_id == user_id)
        )
    ).one()
    given = await session.scalar(select(func.count()).where(Rating.user_id == user_id))
    return UserStats(
        samples=int(samples_row[0]),
        ratings_given=int(given or 0),
        up_received=int(samples_row[1]),
        down_received=int(samples_row[2]),
        first_sample_at=samples_row[3],
        last_sample_at=samples_row[4],
    )


async def admin_stats(session: AsyncSession, *, now: datetime | None = None) -> AdminStats:
    """Whole-database counts, with a per-model breakdown."""
    now = now or utcnow()
    users = await session.scalar(select(func.count()).select_from(User))
    chat_rows = (await session.execute(select(Chat.type, func.count()).group_by(Chat.type))).all()
    totals = (
        await session.execute(
            select(
                func.count(StoredSample.id),
                func.count().filter(StoredSample.delivered.is_(True)),
                func.count().filter(StoredSample.created_at >= now - timedelta(days=1)),
                func.coalesce(func.sum(StoredSample.up_votes), 0),
                func.coalesce(func.sum(StoredSample.down_votes), 0),
            )
        )
    ).one()
    ratings = await session.scalar(select(func.count()).select_from(Rating))
    model_rows = (
        await session.execute(
            select(
                StoredSample.model_name,
                func.count(),
                func.coalesce(func.sum(StoredSample.up_votes), 0),
                func.coalesce(func.sum(StoredSample.down_votes), 0),
                func.avg(StoredSample.generation_ms),
            )
            .group_by(StoredSample.model_name)
            .order_by(func.count().desc(), StoredSample.model_name)
        )
    ).all()
    return AdminStats(
        users=int(users or 0),
        chats={str(kind): int(count) for kind, count in chat_rows},
        samples=int(totals[0]),
        delivered_samples=int(totals[1]),
        samples_last_24h=int(totals[2]),
        ratings=int(ratings or 0),
        up_votes=int(totals[3]),
        down_votes=int(totals[4]),
        models=[
            ModelStats(str(name), int(count), int(up), int(down), float(avg or 0.0))
            for name, count, up, down, avg in model_rows
        ],
    )


# --- redelivered updates ---------------------------------------------------------------------

# How long claimed update ids are kept (Telegram keeps unacknowledged updates up to 24 hours).
UPDATE_CLAIM_TTL = timedelta(days=2)
# Prune old claims on every N-th update id, so no scheduler is needed.
_PRUNE_EVERY = 500


async def claim_update(session: AsyncSession, *, update_id: int) -> bool:
    """Mark Telegram update ``update_id`` as handled; False when it already was.

    Call it first in the same unit of work as the update's effect: if the transaction rolls
    back, the claim goes with it, and a concurrent duplicate waits for (PostgreSQL) or is
    serialised behind (SQLite) the first and then sees the claim.
    """
    stmt = (
        _insert(session, ProcessedUpdate)
        .values(update_id=update_id, handled_at=utcnow())
        .on_conflict_do_nothing(index_elements=[ProcessedUpdate.update_id])
        .returning(ProcessedUpdate.update_id)
    )
    claimed = (await session.execute(stmt)).scalar_one_or_none() is not None
    if claimed and update_id % _PRUNE_EVERY == 0:
        await prune_processed_updates(session)
    return claimed


async def prune_processed_updates(
    session: AsyncSession, *, older_than: timedelta = UPDATE_CLAIM_TTL, now: datetime | None = None
) -> int:
    """Delete update claims older than ``older_than``; returns how many went."""
    cutoff = (now or utcnow()) - older_than
    result = await session.execute(delete(ProcessedUpdate).where(ProcessedUpdate.handled_at < cutoff))
    return _rowcount(result)


# --- forgetting ------------------------------------------------------------------------------


async def forget_user(session: AsyncSession, *, telegram_id: int) -> ForgetResult:
    """Delete everything stored about a user (/forget).

    Removes the user row, their samples (with every rating on them), their ratings of other
    people's samples (whose counters are recounted), and their private chat with the bot.
    Group chats stay: they belong to the group, not to this user.
    """
    user = await get_user(session, telegram_id=telegram_id)
    if user is None:
        return ForgetResult(found=False, samples_deleted=0, ratings_deleted=0, chats_deleted=0)
    user_id = user.id
    # Other people's samples this user rated: their counters must drop by this user's vote.
    touched: Sequence[int] = (
        await session.scalars(
            select(Rating.sample_id)
            .join(StoredSample, Rating.sample_id == StoredSample.id)
            .where(Rating.user_id == user_id, StoredSample.user_id != user_id)
            .order_by(Rating.sample_id)
        )
    ).all()
    for sample_id in touched:  # id order, so two /forget calls cannot deadlock on each other
        await session.execute(
            select(StoredSample.id).where(StoredSample.id == sample_id).with_for_update(key_share=True)
        )
    samples = await session.scalar(select(func.count()).where(StoredSample.user_id == user_id))
    ratings = await session.scalar(select(func.count()).where(Rating.user_id == user_id))
    # A private chat's id is the user's id in Telegram.
    chats = await session.execute(delete(Chat).where(Chat.telegram_id == telegram_id, Chat.type == "private"))
    # ON DELETE CASCADE removes the samples and ratings in the database itself.
    await session.execute(delete(User).where(User.id == user_id))
    await _recount_votes(session, sample_ids=touched)
    return ForgetResult(
        found=True,
        samples_deleted=int(samples or 0),
        ratings_deleted=int(ratings or 0),
        chats_deleted=_rowcount(chats),
    )


__all__ = [
    "UNSET",
    "AdminStats",
    "ForgetResult",
    "GenerationSettings",
    "ModelStats",
    "NotFound",
    "Pending",
    "RatingState",
    "SampleOrigin",
    "StorageError",
    "UserStats",
    "Votes",
    "admin_stats",
    "check_length",
    "check_model_name",
    "check_score",
    "check_temperature_setting",
    "claim_update",
    "count_pending_between",
    "forget_user",
    "get_chat",
    "get_or_create_chat",
    "get_or_create_user",
    "get_sample",
    "get_sample_by_update",
    "get_sample_origin",
    "get_user",
    "get_votes",
    "is_pending",
    "mark_send_uncertain",
    "pending_samples",
    "pending_samples_of_update",
    "pick_unrated_sample",
    "prune_processed_updates",
    "rate",
    "record_sample",
    "resolve_settings",
    "set_group_defaults",
    "set_sample_message_id",
    "set_shared",
    "set_user_length",
    "set_user_model",
    "set_user_temperature",
    "toggle_rating",
    "top_samples",
    "user_stats",
]
