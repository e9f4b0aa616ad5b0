"""Every button press, through one door: parse, carrier check, dispatch, one answer.

Callback data is untrusted (any client can send any bytes for any message), so a press is
acted on only when it parses as one of ours (bot/keyboards.py) and came from a message that
carries exactly that button; a press from an inline message (no chat) may only name a stored
sample, checked against that sample's own inline message. Each feature then checks that the
thing the press names (a sample, a duel, a game) belongs to that message and chat
(`Press.carried_by`). Every press is answered exactly once: by its handler's toast, or with
an empty answer when the handler gave none. One user's presses take turns (bot/press_order.py):
the next waits until this one is answered, so handlers answer once their change is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from telegram import CallbackQuery, Message, Update
from telegram.ext import ContextTypes

from bot import keyboards as kb
from bot.calls import answer_press
from bot.db import repository as repo
from bot.press_order import end_turn
from bot.services import Services, services_of
from bot.texts import text
from bot.who import lang_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Origin:
    """Where a press came from, as Telegram reports it (the client only chooses the data)."""

    chat_id: int | None  # Telegram's chat id (None: an inline message)
    private: bool
    message_id: int | None
    inline_message_id: str | None
    carries_button: bool  # the message's keyboard has a button with exactly this data
    readable: bool = True  # the bot can see the message's keyboard (False: inline, or too old)


def origin_of(query: CallbackQuery) -> Origin:
    """The chat, message or inline message a press came from."""
    message = query.message
    if isinstance(message, Message):
        carries = kb.has_button(message.reply_markup, query.data or "")
        return Origin(message.chat.id, message.chat.type == "private", message.message_id, None, carries)
    if message is not None:  # inaccessible (too old): its chat and id are known, its keyboard is not
        return Origin(message.chat.id, message.chat.type == "private", message.message_id, None, False, False)
    return Origin(None, False, None, query.inline_message_id, False, False)


@dataclass
class Press:
    """One button press being handled: who pressed what, where, and whether it was answered."""

    update: Update
    context: ContextTypes.DEFAULT_TYPE
    query: CallbackQuery
    action: kb.Action
    origin: Origin
    lang: str
    services: Services
    answered: bool = field(default=False)

    @property
    def message(self) -> Message | None:
        """The message the press came from, when the bot can still see it."""
        return self.query.message if isinstance(self.query.message, Message) else None

    async def answer(self, toast: str = "") -> None:
        """Answer the press (once; later calls do nothing)."""
        if not self.answered:
            self.answered = True
            end_turn()  # the press's change is stored: the same user's next press may go
            await answer_press(self.query, toast)

    async def refuse(self) -> None:
        """Answer a press that may not act here."""
        await self.answer(text(self.lang, "button_invalid"))

    def carried_by(self, chat_id: int, message_id: int | None, inline_message_id: str | None = None) -> bool:
        """Whether the press came from the named thing's own message (see `carried`)."""
        return carried(self.origin, chat_id, message_id, inline_message_id)


def carried(
    origin: Origin, chat_id: int, message_id: int | None, inline_message_id: str | None = None
) -> bool:
    """Whether a press came from a sample's, duel's or game's own message: in its chat, from
    its message (or, while its message id is not recorded yet, from a message carrying this
    very button), or from its inline message."""
    if origin.inline_message_id is not None:
        return inline_message_id is not None and origin.inline_message_id == inline_message_id
    if origin.chat_id != chat_id:
        return False
    if message_id is None:
        return origin.carries_button
    return origin.message_id == message_id


PressHandler = Callable[[Press], Awaitable[None]]


def in_anothers_private_chat(chat_id: int | None, private: bool, user_id: int) -> bool:
    """Whether an update has a user act in someone else's private chat: Telegram gives a private
    chat its user's id and lets nobody else in, so such a press or reaction is forged."""
    return private and chat_id != user_id


def acceptable(action: kb.Action | None, origin: Origin, presser: int) -> bool:
    """The carrier check every press passes before any handler sees it: one of our buttons, on
    the message it came from, pressed by someone who can see that message."""
    if action is None or in_anothers_private_chat(origin.chat_id, origin.private, presser):
        return False
    if not origin.readable:
        # An inline message's or an inaccessible message's keyboard cannot be read: only a
        # press naming a sample may come from one (its handler checks the sample's message).
        return isinstance(action, kb.NAMES_SAMPLE)
    return origin.carries_button


def done_before(action: kb.Action | None, query: CallbackQuery) -> str | None:
    """The answer to a press its message no longer carries because the press itself was done
    (a double tap on 🌐 Share, whose button became 🔒 Unshare): which text key says so."""
    message = query.message
    if not isinstance(action, kb.Share) or not isinstance(message, Message):
        return None
    toggled = f"s:{action.sample_id}:{0 if action.shared else 1}"
    if kb.has_button(message.reply_markup, toggled):
        return "already_shared" if action.shared else "already_private"
    return None


def dispatcher(
    handlers: dict[type, PressHandler],
) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]:
    """The one CallbackQueryHandler callback: every action kind must have a handler."""
    kinds = set(kb.Action.__args__)  # type: ignore[attr-defined]
    missing = kinds - handlers.keys()
    if missing:
        raise ValueError(f"no press handler for {sorted(k.__name__ for k in missing)}")

    async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Any button press."""
        query = update.callback_query
        if query is None:
            return
        action = kb.parse(query.data)
        origin = origin_of(query)
        lang = lang_of(update)
        if action is None or not acceptable(action, origin, query.from_user.id):
            await answer_press(query, text(lang, done_before(action, query) or "button_invalid"))
            return
        press = Press(update, context, query, action, origin, lang, services_of(context))
        try:
            await handlers[type(action)](press)
        except Exception:
            await press.answer(text(lang, "unavailable"))  # no details; the error handler logs it
            raise
        finally:
            await press.answer()  # a press its handler left unanswered stops spinning

    return on_press


def owner_rates_own_chat(found: repo.SampleOrigin, *, chat_id: int | None, private: bool, rater: int) -> bool:
    """In the private chat a sample was made in, only its author may act on it (a button or a
    reaction). Telegram lets nobody else in there; a forged update is refused all the same."""
    return not (private and chat_id == found.chat_telegram_id and rater != found.author_telegram_id)


def sample_press_allowed(press: Press, found: repo.SampleOrigin) -> bool:
    """Whether a press naming this sample may act on it: from the sample's own message (in its
    chat, or its inline message); or from a bot message carrying exactly this button in the
    sample's chat (a /rate session in a group), or in a private chat while the sample is shared
    (a /rate session there). Never from someone else in its author's private chat."""
    sample, origin = found.sample, press.origin
    presser = press.query.from_user.id
    if not owner_rates_own_chat(found, chat_id=origin.chat_id, private=origin.private, rater=presser):
        return False
    if press.carried_by(found.chat_telegram_id, sample.telegram_message_id or -1, sample.inline_message_id):
        return True
    if origin.inline_message_id is not None or not origin.carries_button:
        return False
    return origin.chat_id == found.chat_telegram_id or (sample.shared and origin.private)
