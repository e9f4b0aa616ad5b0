"""Users and chats, their settings, how the settings for one request are resolved, and /forget."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import BindParameter, Select, Table, Update, bindparam, delete, func, select
from sqlalchemy import update as sa_update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from bot.db.models import (
    Chat,
    Duel,
    Rating,
    StoredSample,
    User,
    utcnow,
)
from bot.db.repository.base import (
    UNSET,
    NotFound,
    Unset,
    check_chat_type,
    check_level,
    check_level_length,
    check_model_name,
    check_temperature_setting,
    per_dialect,
    rowcount,
    table_of,
)
from bot.db.repository.ratings import recount_votes
from bot.db.trip import Trip, in_session
from core.limits import DEFAULT_TEMPERATURE, LENGTH_BOUNDS

RowT = TypeVar("RowT", User, Chat)


# Users' and chats' rows as trip units read and write them (bot/db/trip.py): columns, built into
# detached entities here (every update reads its asker's two rows this way).
USERS, CHATS = table_of(User), table_of(Chat)
_KEYS = {
    model: tuple(model.__mapper__.get_property_by_column(column).key for column in table.c)
    for model, table in ((User, USERS), (Chat, CHATS))
}


def _by_telegram_id(table: Table) -> Select[Any]:
    return select(*table.c).where(table.c.telegram_id == bindparam("telegram_id"))


def _insert_new(table: Table, **values: BindParameter[Any]) -> dict[str, Any]:
    """INSERT .. ON CONFLICT (telegram_id) DO NOTHING RETURNING every column, per dialect; both
    timestamps from the parameter "now". (A bound parameter of an INSERT or UPDATE may not be
    named as a column.)"""
    now: BindParameter[Any] = bindparam("now")
    return per_dialect(
        lambda insert: (
            insert(table)
            .values(**values, created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=[table.c.telegram_id])
            .returning(*table.c)
        )
    )


def _refresh(table: Table, **values: BindParameter[Any]) -> Update:
    return (
        sa_update(table).where(table.c.id == bindparam("row")).values(**values, updated_at=bindparam("now"))
    )


_USER_BY_TELEGRAM_ID, _CHAT_BY_TELEGRAM_ID = _by_telegram_id(USERS), _by_telegram_id(CHATS)
_INSERT_USER = _insert_new(
    USERS, telegram_id=bindparam("tg"), display_name=bindparam("name"), language_code=bindparam("language")
)
_INSERT_CHAT = _insert_new(
    CHATS, telegram_id=bindparam("tg"), type=bindparam("kind"), title=bindparam("name")
)
_REFRESH_USER = _refresh(USERS, display_name=bindparam("name"), language_code=bindparam("language"))
_REFRESH_CHAT = _refresh(CHATS, type=bindparam("kind"), title=bindparam("name"))


def user_of(values: Sequence[Any], **changed: Any) -> User:
    """A user row's columns (in table order) as a detached User, with `changed` applied."""
    return _detached(User, values, changed)


def chat_of(values: Sequence[Any], **changed: Any) -> Chat:
    """A chat row's columns (in table order) as a detached Chat, with `changed` applied."""
    return _detached(Chat, values, changed)


def _detached(model: type[RowT], values: Sequence[Any], changed: dict[str, Any]) -> RowT:
    # As a session would leave it after loading: persistent values, no pending changes, so
    # `Session.merge(row, load=False)` attaches it without a query.
    row = model(**{**dict(zip(_KEYS[model], values, strict=True)), **changed})
    make_transient_to_detached(row)
    return row


def _found_or_inserted(
    trip: Trip, by_id: Select[Any], insert: dict[str, Any], new: dict[str, Any], *, insert_first: bool
) -> tuple[Sequence[Any], bool]:
    """The row with telegram id new["tg"], inserted from `new` if there is none; (its columns,
    whether this call inserted it). Safe under concurrency: two updates from a newcomer racing
    both end up with the same row (INSERT .. ON CONFLICT DO NOTHING RETURNING; the one that
    lost the race reads it back). `insert_first`: a read just found none (one statement, not two)."""
    telegram_id = {"telegram_id": new["tg"]}
    found = None if insert_first else trip.rows(by_id, telegram_id)
    if found:
        return found[0], False
    inserted = trip.rows(insert[trip.dialect], {**new, "now": utcnow()})
    if inserted:
        return inserted[0], True
    found = trip.rows(by_id, telegram_id)  # stored meanwhile (or by a race)
    assert found, "a row must exist after the upsert"
    return found[0], False


@dataclass(frozen=True, slots=True)
class GenerationSettings:
    """The settings a generation request in a given chat should use.

    A length is kept per model level (characters, words); None: not chosen anywhere, so the
    level's default.
    """

    temperature: float
    length_char: int | None
    length_word: int | None
    model_name: str

    def length_for(self, level: str) -> int | None:
        """The length chosen for this model level (unknown levels count as char, like core's)."""
        return self.length_word if level == "word" else self.length_char


@dataclass(frozen=True, slots=True)
class ForgetResult:
    """What /forget removed."""

    found: bool
    samples_deleted: int
    ratings_deleted: int
    chats_deleted: int


async def get_user(session: AsyncSession, *, telegram_id: int) -> User | None:
    """The user with this Telegram id, if known."""
    return await session.scalar(select(User).where(User.telegram_id == telegram_id))


def user_is_current(user: User | None, *, display_name: str | None, language_code: str | None) -> bool:
    """Whether the stored user needs no write for an update with this name and language."""
    return (
        user is not None
        and (display_name is None or user.display_name == display_name)
        and (language_code is None or user.language_code == language_code)
    )


def chat_is_current(chat: Chat | None, *, type: str, title: str | None) -> bool:
    """Whether the stored chat needs no write for an update with this type and title."""
    return chat is not None and chat.type == type and (title is None or chat.title == title)


def user_row(
    trip: Trip,
    *,
    telegram_id: int,
    display_name: str | None = None,
    language_code: str | None = None,
    insert_first: bool = False,
) -> User:
    """The user with this Telegram id, created on first sight; name and language refreshed. A
    trip unit (bot/db/trip.py); the user comes back detached (`get_or_create_user` attaches it).

    `insert_first`: a read just found no such user (a newcomer: one statement instead of two);
    concurrent first sights end up with one row (`_found_or_inserted`).
    """
    new = {"tg": telegram_id, "name": display_name, "language": language_code}
    values, inserted = _found_or_inserted(
        trip, _USER_BY_TELEGRAM_ID, _INSERT_USER, new, insert_first=insert_first
    )
    user = user_of(values)
    # Only write when something changed, so that a busy user does not cost a write per message.
    if not inserted and not user_is_current(user, display_name=display_name, language_code=language_code):
        name = user.display_name if display_name is None else display_name
        language = user.language_code if language_code is None else language_code
        now = utcnow()
        trip.count(_REFRESH_USER, {"row": user.id, "name": name, "language": language, "now": now})
        user = user_of(values, display_name=name, language_code=language, updated_at=now)
    return user


async def get_or_create_user(
    session: AsyncSession,
    *,
    telegram_id: int,
    display_name: str | None = None,
    language_code: str | None = None,
    insert_first: bool = False,
) -> User:
    """`user_row` inside a session's unit of work, the user attached to the session."""
    unit = partial(
        user_row,
        telegram_id=telegram_id,
        display_name=display_name,
        language_code=language_code,
        insert_first=insert_first,
    )
    return await session.merge(await in_session(session, unit), load=False)


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


def _set_length(row: User | Chat, level: str, length: int | None) -> None:
    """Store a length (None clears it) in the column of its model level."""
    value = None if length is None else check_level_length(length, level)
    if check_level(level) == "word":
        row.length_word = value
    else:
        row.length_char = value


async def set_user_length(session: AsyncSession, *, user_id: int, level: str, length: int) -> User:
    """Set a user's sample length for one model level ("char": characters, "word": words);
    raises ValueError when out of that level's range. The other level's length is untouched."""
    user = await _load_user(session, user_id)
    _set_length(user, level, length)
    await session.flush()
    return user


async def set_user_model(session: AsyncSession, *, user_id: int, model_name: str | None) -> User:
    """Choose a user's model bundle by name; None returns them to the bot's default."""
    user = await _load_user(session, user_id)
    user.model_name = None if model_name is None else check_model_name(model_name)
    await session.flush()
    return user


async def chat_by_id(session: AsyncSession, *, chat_id: int) -> Chat:
    """The stored chat with this id (ours, not Telegram's); NotFound when there is none."""
    chat = await session.get(Chat, chat_id)
    if chat is None:
        raise NotFound(f"no chat with id {chat_id}")
    return chat


async def get_chat(session: AsyncSession, *, telegram_id: int) -> Chat | None:
    """The chat with this Telegram id, if known."""
    return await session.scalar(select(Chat).where(Chat.telegram_id == telegram_id))


def chat_row(
    trip: Trip, *, telegram_id: int, type: str, title: str | None = None, insert_first: bool = False
) -> Chat:
    """The chat with this Telegram id, created on first sight; type and title refreshed. A trip
    unit (bot/db/trip.py); the chat comes back detached (`get_or_create_chat` attaches it).

    ``type`` is Telegram's chat type: private, group, supergroup or channel (a group becomes
    a supergroup under a new id, so it simply appears as a new chat). `insert_first`: a read
    just found no such chat (one statement instead of two).
    """
    check_chat_type(type)
    new = {"tg": telegram_id, "kind": type, "name": title}
    values, inserted = _found_or_inserted(
        trip, _CHAT_BY_TELEGRAM_ID, _INSERT_CHAT, new, insert_first=insert_first
    )
    chat = chat_of(values)
    if not inserted and not chat_is_current(chat, type=type, title=title):
        name = chat.title if title is None else title
        now = utcnow()
        trip.count(_REFRESH_CHAT, {"row": chat.id, "kind": type, "name": name, "now": now})
        chat = chat_of(values, type=type, title=name, updated_at=now)
    return chat


async def get_or_create_chat(
    session: AsyncSession,
    *,
    telegram_id: int,
    type: str,
    title: str | None = None,
    insert_first: bool = False,
) -> Chat:
    """`chat_row` inside a session's unit of work, the chat attached to the session."""
    unit = partial(chat_row, telegram_id=telegram_id, type=type, title=title, insert_first=insert_first)
    return await session.merge(await in_session(session, unit), load=False)


async def lock_chat(session: AsyncSession, *, chat_id: int) -> None:
    """Lock a chat's row until the transaction ends (one /game at a time per chat)."""
    await session.get(Chat, chat_id, with_for_update=True)


async def set_group_defaults(
    session: AsyncSession,
    *,
    chat_id: int,
    temperature: float | Unset | None = UNSET,
    length: int | Unset | None = UNSET,
    level: str | None = None,
    model_name: str | Unset | None = UNSET,
) -> Chat:
    """Set or clear (None) a group's defaults; arguments left out are not touched.

    A length is for one model ``level``; ``length=None`` without a level clears both levels'.
    """
    chat = await session.get(Chat, chat_id)
    if chat is None:
        raise NotFound(f"no chat with id {chat_id}")
    if temperature is not UNSET:
        chat.temperature = None if temperature is None else check_temperature_setting(temperature)
    if isinstance(length, int) and level is None:
        raise ValueError("a group's length needs the model level it counts in")
    if length is not UNSET:
        for each in LENGTH_BOUNDS if level is None else (level,):
            _set_length(chat, each, length)
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
    length_char, length_word = user.length_char, user.length_word
    if group is not None:
        length_char = group.length_char if length_char is None else length_char
        length_word = group.length_word if length_word is None else length_word
    return GenerationSettings(
        temperature=temperature,
        length_char=length_char,
        length_word=length_word,
        model_name=user.model_name or (group.model_name if group else None) or default_model,
    )


async def forget_user(session: AsyncSession, *, telegram_id: int) -> ForgetResult:
    """Delete everything stored about a user (/forget), and only that.

    The policy: the user's own data (settings, samples, seeds, names, ids) is deleted, or
    redacted wherever it was copied; other people's contributions stay, detached from them.
    So: the user row, their samples (with every rating on them), their ratings of other
    people's samples (whose counters are recounted), and their private chat with the bot go;
    their seed is blanked in other people's samples and duels that copied it (🔁 on a shared
    sample, 🆚); the games and duels they started stay with everyone else's guesses and votes
    (starter set to NULL). Group chats stay: they belong to the group, not to this user.
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
    # Their text copied into other people's samples and duels is redacted there.
    for table in (StoredSample, Duel):
        await session.execute(
            sa_update(table).where(table.seed_user_id == user_id).values(seed="", seed_user_id=None)
        )
    # A private chat's id is the user's id in Telegram.
    chats = await session.execute(delete(Chat).where(Chat.telegram_id == telegram_id, Chat.type == "private"))
    # ON DELETE CASCADE removes the samples and ratings in the database itself.
    await session.execute(delete(User).where(User.id == user_id))
    await recount_votes(session, sample_ids=touched)
    return ForgetResult(
        found=True,
        samples_deleted=int(samples or 0),
        ratings_deleted=int(ratings or 0),
        chats_deleted=rowcount(chats),
    )
