"""Who is asking and with which settings: the one resolution every update goes through.

For every update (a message, a press, an inline query) `who` stores or refreshes the user and
chat rows and resolves what to generate with: the model (the user's choice, else the group's
default, else the loaded model that speaks the user's Telegram language), the temperature
(user, group, bot) and the length for that model's level (characters or words, kept apart so
switching models never reinterprets a number).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Chat as TgChat
from telegram import Update
from telegram import User as TgUser

from bot.db import repository as repo
from bot.db.models import Chat, User
from bot.db.trip import Trip, in_session
from bot.generation import GenerationService
from bot.parsing import effective_length
from bot.render import clean
from bot.services import Services
from bot.texts import language_of
from core.acrostic import writes_poems

CHAT_TYPES = ("private", "group", "supergroup", "channel")


@dataclass(frozen=True)
class Who:
    """The stored user and chat behind an update, with the settings that apply there."""

    user_id: int
    chat_id: int | None  # None: an inline query or a press on an inline message (no chat)
    private: bool  # a private chat with the bot (False in groups and without a chat)
    lang: str  # the reply language: the user's Telegram language
    model: str  # a loaded model
    model_version: str
    level: str  # "char" or "word"
    language: str  # the model's language ("en", "zh")
    verse: bool  # the model writes poems: its samples are shown a couplet a line
    temperature: float
    length: int  # for the model's level
    chosen_model: str | None  # what the user picked with /model (None: never chose)
    settings: repo.GenerationSettings


def display_name(user: TgUser) -> str:
    """A short name for the user (never their id), without characters that garble a chat."""
    return clean(user.full_name or user.username or "there")[:256] or "there"


def lang_of(update: Update) -> str:
    """The reply language for this update's user."""
    user = update.effective_user
    return language_of(user.language_code if user else None)


def model_for_language(generation: GenerationService, language_code: str | None) -> str:
    """The model a user who never chose one starts on: the bot's default when it speaks the
    user's Telegram language, else a loaded model that does (a Chinese client gets Chinese),
    prose before poems (the poem model is one tap away in /model, and /acrostic finds it)."""
    wanted = "zh" if language_of(language_code) == "zh" else "en"
    speaks = [info.name for info in generation.models() if (info.language == "zh") == (wanted == "zh")]
    if not speaks or generation.default in speaks:
        return generation.default
    prose = [name for name in speaks if not writes_poems(generation.generator(name).bundle)]
    return (prose or speaks)[0]


@dataclass(frozen=True)
class Seen:
    """What an update says about its user and chat, as the rows store it."""

    user: TgUser
    name: str
    chat: TgChat | None
    chat_type: str
    chat_title: str | None

    @classmethod
    def of(cls, tg_user: TgUser, tg_chat: TgChat | None) -> Seen:
        """The stored form of an update's user and chat."""
        chat_type = tg_chat.type if tg_chat is not None and tg_chat.type in CHAT_TYPES else "group"
        title = (clean(tg_chat.title or "")[:256] or None) if tg_chat is not None else None
        return cls(tg_user, display_name(tg_user), tg_chat, chat_type, title)

    def current(self, rows: repo.AskerRows) -> tuple[User, Chat | None] | None:
        """The stored user and chat (when the update has a chat) if both exist and need no
        write; None otherwise (a newcomer, a new chat, a changed name, language or title)."""
        user, chat = rows.user, rows.chat
        if not repo.user_is_current(user, display_name=self.name, language_code=self.user.language_code):
            return None
        assert user is not None
        if self.chat is None:
            return user, None
        if not repo.chat_is_current(chat, type=self.chat_type, title=self.chat_title):
            return None
        return user, chat

    def read(self, trip: Trip, *, update_id: int | None = None) -> repo.AskerRows:
        """The stored rows of this user and chat, and whether `update_id` was handled: one
        statement for a stored user (a trip unit: `Database.run_trip(..., write=False)`)."""
        chat_id = self.chat.id if self.chat is not None else None
        return repo.asker(trip, user_telegram_id=self.user.id, chat_telegram_id=chat_id, update_id=update_id)


def register(trip: Trip, seen: Seen, looked: repo.AskerRows | None = None) -> tuple[User, Chat | None]:
    """Get or create the user row and, when the update has one, the chat row (a trip unit).
    `looked`: what a read just found (a row it did not find is inserted first, without reading
    it again)."""
    user = repo.user_row(
        trip,
        telegram_id=seen.user.id,
        display_name=seen.name,
        language_code=seen.user.language_code,
        insert_first=looked is not None and looked.user is None,
    )
    if seen.chat is None:
        return user, None
    chat = repo.chat_row(
        trip,
        telegram_id=seen.chat.id,
        type=seen.chat_type,
        title=seen.chat_title,
        insert_first=looked is not None and looked.chat is None,
    )
    return user, chat


async def store_user_and_chat(
    session: AsyncSession, seen: Seen, looked: repo.AskerRows | None = None
) -> tuple[User, Chat | None]:
    """`register` inside a session's unit of work (the rows come back detached: read them)."""
    return await in_session(session, partial(register, seen=seen, looked=looked))


def resolve(generation: GenerationService, user: User, chat: Chat | None, lang: str) -> Who:
    """The settings that apply to this user in this chat (or in no chat)."""
    default = model_for_language(generation, user.language_code)
    settings = repo.resolve_settings(user, chat, default_model=default)
    model = generation.resolve(settings.model_name)
    info = generation.info(model)
    return Who(
        user_id=user.id,
        chat_id=chat.id if chat is not None else None,
        private=chat is not None and chat.type == "private",
        lang=lang,
        model=model,
        model_version=info.version,
        level=info.level,
        language=info.language,
        verse=info.verse,
        temperature=settings.temperature,
        length=effective_length(settings.length_for(info.level), info.level),
        chosen_model=user.model_name,
        settings=settings,
    )


def seen_in(update: Update) -> Seen:
    """What the update says about its user and chat."""
    tg_user = update.effective_user
    if tg_user is None:
        raise ValueError("an update without a user has no settings")
    return Seen.of(tg_user, update.effective_chat)


def known_who(generation: GenerationService, seen: Seen, rows: repo.AskerRows, lang: str) -> Who | None:
    """The Who of what an update `seen` says, from its stored rows when they exist and are
    unchanged; None when they need a write."""
    current = seen.current(rows)
    return None if current is None else resolve(generation, *current, lang)


async def who(services: Services, update: Update, *, looked: repo.AskerRows | None = None) -> Who:
    """The stored user and chat behind an update (created on first sight) and the settings that
    apply: the first database call of every handler that did not read it at admission.
    `looked`: admission's read found rows that need a write (or none): go straight to it."""
    seen, lang = seen_in(update), lang_of(update)
    # Most updates come from someone known, in a known chat, unchanged: a read answers them,
    # without SQLite's write lock. Otherwise the write, which on SQLite lets writes of work
    # under way go first (a newcomer's rows wait behind replies already being made).
    if looked is None:
        looked = await services.db.run_trip(seen.read, write=False)
        known = known_who(services.generation, seen, looked, lang)
        if known is not None:
            return known

    user, chat = await services.db.run_trip(partial(register, seen=seen, looked=looked), admitting=True)
    return resolve(services.generation, user, chat, lang)
