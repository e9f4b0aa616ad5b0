"""The sandbox's world: users, chats, messages, pending updates, and what the bot did.

Objects are kept as the JSON dicts the Bot API exchanges, so what the bot receives and what a
test inspects are exactly what Telegram would send.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from sandbox.entities import auto_entities

Json = dict[str, Any]
# Update kinds Telegram sends only to a bot that names them in allowed_updates.
OPT_IN_UPDATES = ("chat_member", "message_reaction", "message_reaction_count")


@dataclass
class ChatState:
    """One chat and its message history."""

    info: Json  # the Chat object: id, type, title / first_name
    members: set[int] = field(default_factory=set)
    admins: set[int] = field(default_factory=set)
    messages: dict[int, Json] = field(default_factory=dict)
    next_message_id: int = 1
    # Message id -> user id -> that user's reactions (emoji), oldest first, as Telegram lists them.
    reactions: dict[int, dict[int, list[str]]] = field(default_factory=dict)
    # Message id -> emoji -> anonymous reactions (a channel's): counts only, nobody's.
    anonymous: dict[int, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredFile:
    """The bytes of a file the bot uploaded (a sendPhoto picture), served to the web page."""

    content_type: str
    content: bytes


@dataclass
class Call:
    """One Bot API request the sandbox received."""

    method: str
    params: Json
    at: float


class SandboxState:
    """Everything the server knows; all mutation goes through its methods."""

    def __init__(self, *, token: str, bot_id: int, bot_username: str, bot_name: str) -> None:
        self.token = token
        self.bot: Json = {"id": bot_id, "is_bot": True, "first_name": bot_name, "username": bot_username}
        self.users: dict[int, Json] = {}
        self.chats: dict[int, ChatState] = {}
        self.updates: list[Json] = []
        self.next_update_id = 1
        self.queries: dict[str, Json] = {}  # callback query id -> {"answered": bool, "text": ..}
        # Inline query id -> {"user_id", "query", "answered", "results", "at"} (answerInlineQuery).
        self.inline_queries: dict[str, Json] = {}
        # Inline message id -> (chat id, message id): where a chosen inline result was posted.
        self.inline_messages: dict[str, tuple[int, int]] = {}
        self.commands: dict[tuple[str, str], list[Json]] = {}
        self.files: dict[str, StoredFile] = {}  # file_unique_id -> the uploaded bytes
        self.chat_actions: list[tuple[int, str, float]] = []
        self.calls: list[Call] = []
        self.webhook: Json = {"url": "", "secret_token": None, "allowed_updates": None}
        # The bot's last allowed_updates (getUpdates or setWebhook); None or []: Telegram's default.
        self.allowed_updates: list[str] | None = None
        self.version = 0  # bumps on every change, for the web page's long poll
        self.changed = asyncio.Condition()
        self._query_ids = itertools.count(1)
        self._user_ids = itertools.count(1001)
        self._group_ids = itertools.count(1)

    # -- people and chats --------------------------------------------------------------------

    def add_user(
        self,
        first_name: str,
        *,
        language_code: str = "en",
        username: str | None = None,
        user_id: int | None = None,
    ) -> Json:
        """A human user with a private chat with the bot."""
        uid = user_id if user_id is not None else next(self._user_ids)
        user: Json = {"id": uid, "is_bot": False, "first_name": first_name, "language_code": language_code}
        if username:
            user["username"] = username
        self.users[uid] = user
        self.chats[uid] = ChatState(
            info={"id": uid, "type": "private", "first_name": first_name}, members={uid}
        )
        self.touch()
        return user

    def add_group(
        self, title: str, members: list[int], *, admins: list[int] | None = None, supergroup: bool = True
    ) -> int:
        """A group with these members; the first member is its creator."""
        chat_id = -1_000_000_000_000 - next(self._group_ids) if supergroup else -next(self._group_ids)
        info = {"id": chat_id, "type": "supergroup" if supergroup else "group", "title": title}
        admin_ids = set(admins if admins is not None else members[:1])
        self.chats[chat_id] = ChatState(info=info, members=set(members), admins=admin_ids)
        self.touch()
        return chat_id

    def chat(self, chat_id: int | str) -> ChatState | None:
        """A chat by id (or None)."""
        try:
            return self.chats.get(int(chat_id))
        except (TypeError, ValueError):
            return None

    # -- messages ----------------------------------------------------------------------------

    def store_message(self, chat: ChatState, message: Json) -> Json:
        """Give a message the chat's next id and keep it."""
        message["message_id"] = chat.next_message_id
        chat.next_message_id += 1
        chat.messages[message["message_id"]] = message
        self.touch()
        return message

    def _reply_copy(self, chat: ChatState, reply_to: int | None) -> Json | None:
        if reply_to is None or reply_to not in chat.messages:
            return None
        replied = copy.deepcopy(chat.messages[reply_to])
        replied.pop("reply_to_message", None)  # Telegram nests only one level
        return replied

    def user_message(
        self,
        user_id: int,
        chat_id: int,
        text: str | None,
        *,
        reply_to: int | None = None,
        extra: Json | None = None,
    ) -> Json:
        """A message from a user, stored and queued as an update."""
        chat = self.chats[chat_id]
        message: Json = {"date": int(time.time()), "chat": dict(chat.info), "from": dict(self.users[user_id])}
        if text is not None:
            message["text"] = text
            entities = auto_entities(text, self.bot["username"])
            if entities:
                message["entities"] = entities
        replied = self._reply_copy(chat, reply_to)
        if replied is not None:
            message["reply_to_message"] = replied
        message.update(extra or {})
        self.store_message(chat, message)
        self.enqueue({"message": copy.deepcopy(message)})
        return message

    def bot_message(
        self,
        chat: ChatState,
        text: str,
        entities: list[Json],
        *,
        reply_markup: Json | None,
        reply_to: int | None,
    ) -> Json:
        """A message the bot sent."""
        message: Json = {
            "date": int(time.time()),
            "chat": dict(chat.info),
            "from": dict(self.bot),
            "text": text,
        }
        if entities:
            message["entities"] = entities
        if reply_markup:
            message["reply_markup"] = reply_markup
        replied = self._reply_copy(chat, reply_to)
        if replied is not None:
            message["reply_to_message"] = replied
        return self.store_message(chat, message)

    def keep_file(self, unique_id: str, content_type: str, content: bytes) -> None:
        """Keep an uploaded file's bytes under its file_unique_id (a content hash)."""
        self.files[unique_id] = StoredFile(content_type, content)

    # -- updates -----------------------------------------------------------------------------

    def enqueue(self, payload: Json) -> Json:
        """Queue an update (payload is e.g. {"message": ...}); it gets the next update_id."""
        update = {"update_id": self.next_update_id, **payload}
        self.next_update_id += 1
        self.updates.append(update)
        self.touch()
        return update

    def delivers(self, update: Json) -> bool:
        """Whether the bot receives this update under its allowed_updates (Telegram's default:
        everything but the opt-in kinds)."""
        allowed = self.allowed_updates or None
        kinds = [k for k in update if k != "update_id"]
        if allowed is None:
            return not any(k in OPT_IN_UPDATES for k in kinds)
        return any(k in allowed for k in kinds)

    def callback_query(self, user_id: int, chat_id: int, message_id: int, data: str) -> Json:
        """A press on an inline button; returns the queued update."""
        message = copy.deepcopy(self.chats[chat_id].messages[message_id])
        return self.press(user_id, data, chat_instance=str(abs(chat_id)), message=message)

    def press(self, user_id: int, data: str, *, chat_instance: str, **where: Json | str) -> Json:
        """Queue a callback query from `user_id` with `data`, from a `message` or an
        `inline_message_id`; the query waits for the bot's answer in `queries`."""
        query_id = f"{next(self._query_ids)}{user_id}"
        self.queries[query_id] = {
            "answered": False,
            "text": None,
            "show_alert": False,
            "at": time.monotonic(),
        }
        query: Json = {
            "id": query_id,
            "from": dict(self.users[user_id]),
            "chat_instance": chat_instance,
            "data": data,
            **where,
        }
        return self.enqueue({"callback_query": query})

    # -- reactions ---------------------------------------------------------------------------

    def _sees_reactions(self, chat: ChatState) -> bool:
        """A bot gets reaction updates in private chats, and in groups where it is an admin."""
        return chat.info["type"] == "private" or self.bot["id"] in chat.admins

    def react(self, user_id: int, chat_id: int, message_id: int, emoji: list[str]) -> Json | None:
        """`user_id` sets their reactions on a message to `emoji` (oldest first; [] removes
        them). Returns the message_reaction update queued for the bot, or None when it gets
        none (nothing changed, or a group where the bot is not an administrator)."""
        chat = self.chats[chat_id]
        if message_id not in chat.messages:
            raise LookupError(f"no message {message_id} in chat {chat_id}")
        on_message = chat.reactions.setdefault(message_id, {})
        old = on_message.get(user_id, [])
        new = list(dict.fromkeys(emoji))  # one of each, in the order set
        if new:
            on_message[user_id] = new
        else:
            on_message.pop(user_id, None)
        self.touch()
        if old == new or not self._sees_reactions(chat):
            return None
        reaction: Json = {
            "chat": dict(chat.info),
            "message_id": message_id,
            "user": dict(self.users[user_id]),
            "date": int(time.time()),
            "old_reaction": [{"type": "emoji", "emoji": e} for e in old],
            "new_reaction": [{"type": "emoji", "emoji": e} for e in new],
        }
        return self.enqueue({"message_reaction": reaction})

    def toggle_reaction(self, user_id: int, chat_id: int, message_id: int, emoji: str) -> Json | None:
        """A click on a reaction, as in Telegram without Premium: the one reaction set goes,
        any other replaces it."""
        current = self.chats[chat_id].reactions.get(message_id, {}).get(user_id, [])
        return self.react(user_id, chat_id, message_id, [] if emoji in current else [emoji])

    def count_reactions(self, chat_id: int, message_id: int, counts: dict[str, int]) -> Json | None:
        """Anonymous reactions on a message are now `counts` (emoji -> how many): Telegram's
        message_reaction_count update, queued for the bot where it sees reactions."""
        chat = self.chats[chat_id]
        if message_id not in chat.messages:
            raise LookupError(f"no message {message_id} in chat {chat_id}")
        chat.anonymous[message_id] = {e: n for e, n in counts.items() if n > 0}
        self.touch()
        if not self._sees_reactions(chat):
            return None
        ordered = sorted(chat.anonymous[message_id].items(), key=lambda item: -item[1])  # most first
        counted: Json = {
            "chat": dict(chat.info),
            "message_id": message_id,
            "date": int(time.time()),
            "reactions": [{"type": {"type": "emoji", "emoji": e}, "total_count": n} for e, n in ordered],
        }
        return self.enqueue({"message_reaction_count": counted})

    def reaction_counts(self, chat: ChatState, message_id: int) -> list[Json]:
        """A message's reactions as the page shows them: emoji, count and who (first set first)."""
        shown: dict[str, Json] = {}
        for user_id, emoji in chat.reactions.get(message_id, {}).items():
            for e in emoji:
                entry = shown.setdefault(e, {"emoji": e, "count": 0, "users": []})
                entry["count"] += 1
                entry["users"].append(user_id)
        for e, n in chat.anonymous.get(message_id, {}).items():
            shown.setdefault(e, {"emoji": e, "count": 0, "users": []})["count"] += n
        return list(shown.values())

    # -- inline mode -------------------------------------------------------------------------

    def inline_query(self, user_id: int, query: str, *, chat_type: str = "private") -> Json:
        """A user typed "@bot query" in a chat; returns the queued update."""
        query_id = f"i{next(self._query_ids)}{user_id}"
        self.inline_queries[query_id] = {
            "user_id": user_id,
            "query": query,
            "answered": False,
            "results": [],
            "at": time.monotonic(),
        }
        payload: Json = {
            "id": query_id,
            "from": dict(self.users[user_id]),
            "query": query,
            "offset": "",
            "chat_type": chat_type,
        }
        return self.enqueue({"inline_query": payload})

    def choose_inline_result(self, user_id: int, chat_id: int, query_id: str, result_id: str) -> Json:
        """The user picked a result: it is posted in the chat "via" the bot, and (with inline
        feedback on) a chosen_inline_result update is queued. Returns the posted message."""
        asked = self.inline_queries[query_id]
        result = next(r for r in asked["results"] if r["id"] == result_id)
        content = result["input_message_content"]
        chat = self.chats[chat_id]
        message: Json = {
            "date": int(time.time()),
            "chat": dict(chat.info),
            "from": dict(self.users[user_id]),
            "via_bot": dict(self.bot),
            "text": content["text"],
        }
        if content.get("entities"):
            message["entities"] = content["entities"]
        if result.get("reply_markup"):
            message["reply_markup"] = result["reply_markup"]
        self.store_message(chat, message)
        inline_message_id = f"AgAAA{chat_id & 0xFFFFFF:x}{message['message_id']}"
        self.inline_messages[inline_message_id] = (chat_id, message["message_id"])
        chosen: Json = {
            "result_id": result_id,
            "from": dict(self.users[user_id]),
            "query": asked["query"],
            "inline_message_id": inline_message_id,
        }
        self.enqueue({"chosen_inline_result": chosen})
        return message

    def touch(self) -> None:
        """Record a change and wake everyone waiting for one."""
        self.version += 1
        loop_running = True
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            loop_running = False
        if loop_running:
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_for_change(self, version: int, timeout: float) -> None:
        """Return when the state's version moves past `version` or the timeout passes."""
        try:
            async with asyncio.timeout(timeout):
                async with self.changed:
                    await self.changed.wait_for(lambda: self.version > version)
        except TimeoutError:
            pass
