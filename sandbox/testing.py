"""The sandbox as a test fixture: run it in-process, act as users, read what the bot did.

async with SandboxServer() as sb:
    ann = sb.user("Ann")
    app = ApplicationBuilder().token(sb.token).base_url(sb.base_url)...
    sb.send(ann, ann["id"], "/start")
    (reply,) = await sb.wait_for_bot_messages(ann["id"])
"""

from __future__ import annotations

import asyncio
import copy
import time
from types import TracebackType
from typing import Any

from aiohttp import web

from sandbox.faults import Faults
from sandbox.server import DEFAULT_TOKEN, SandboxApp
from sandbox.state import Call, Json


class SandboxServer:
    """An in-process sandbox on a free loopback port."""

    def __init__(
        self, *, token: str = DEFAULT_TOKEN, bot_username: str = "lstm_test_bot", port: int = 0
    ) -> None:
        self.sandbox = SandboxApp(token=token, bot_username=bot_username)
        self.token = token
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def __aenter__(self) -> SandboxServer:
        self._runner = web.AppRunner(self.sandbox.app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        server = site._server  # the bound socket tells us the port picked for port 0
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def __aexit__(
        self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's root, e.g. for the web page."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass to PTB's `ApplicationBuilder().base_url(...)`."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """What to pass to PTB's `base_file_url(...)`."""
        return f"{self.url}/file/bot"

    @property
    def faults(self) -> Faults:
        """Fault injection: `sb.faults.add("sendMessage", "429", times=2, retry_after=1)`."""
        return self.sandbox.faults

    @property
    def bot(self) -> Json:
        """The bot's own User object."""
        return self.sandbox.state.bot

    # -- acting as people --------------------------------------------------------------------

    def user(
        self, first_name: str = "Ann", *, language_code: str = "en", username: str | None = None
    ) -> Json:
        """A new user (with a private chat whose id is the user's id)."""
        return self.sandbox.state.add_user(first_name, language_code=language_code, username=username)

    def group(self, title: str, members: list[Json], *, admins: list[Json] | None = None) -> int:
        """A new supergroup with these members; returns its chat id."""
        return self.sandbox.state.add_group(
            title,
            [m["id"] for m in members],
            admins=[a["id"] for a in admins] if admins is not None else None,
        )

    def send(
        self,
        user: Json,
        chat_id: int,
        text: str | None,
        *,
        reply_to: int | None = None,
        extra: Json | None = None,
    ) -> Json:
        """`user` sends `text` in a chat (commands and mentions get their entities)."""
        return self.sandbox.state.user_message(user["id"], chat_id, text, reply_to=reply_to, extra=extra)

    def send_sticker(self, user: Json, chat_id: int) -> Json:
        """A message with no text."""
        sticker = {
            "file_id": "CAAC",
            "file_unique_id": "AgAD",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        }
        return self.send(user, chat_id, None, extra={"sticker": sticker})

    def edit(self, user: Json, chat_id: int, message_id: int, text: str) -> Json:
        """`user` edits their message: queues an edited_message update."""
        chat = self.sandbox.state.chats[chat_id]
        message = dict(chat.messages[message_id], text=text, edit_date=int(time.time()))
        chat.messages[message_id] = message
        return self.sandbox.state.enqueue({"edited_message": message})

    def raw_update(self, payload: Json) -> Json:
        """Queue any update payload, e.g. {"channel_post": {...}} or an unknown kind."""
        return self.sandbox.state.enqueue(payload)

    def redeliver(self, update: Json) -> None:
        """Deliver an update again with the same update_id (as after a crash before confirming)."""
        self.sandbox.state.updates.append(copy.deepcopy(update))
        self.sandbox.state.touch()

    def press(self, user: Json, message: Json, data: str | None = None, *, button: str | None = None) -> str:
        """Press a button (see `press_update`); returns the callback query id."""
        return str(self.press_update(user, message, data, button=button)["callback_query"]["id"])

    def press_update(
        self, user: Json, message: Json, data: str | None = None, *, button: str | None = None
    ) -> Json:
        """Press a button on a bot message: by its callback data, by (part of) its label, or forged data."""
        chat_id = message["chat"]["id"]
        current = self.message(chat_id, message["message_id"])
        if data is None:
            for row in current.get("reply_markup", {}).get("inline_keyboard", []):
                for candidate in row:
                    if button is None or button in candidate["text"]:
                        data = candidate["callback_data"]
                        break
                if data is not None:
                    break
        if data is None:
            raise LookupError(f"no button {button!r} on message {message['message_id']}")
        return self.sandbox.state.callback_query(user["id"], chat_id, message["message_id"], data)

    def react(self, user: Json, message: Json, *emoji: str) -> Json | None:
        """`user` sets their reactions on a message to `emoji` (in the order set; none removes
        them all); returns the message_reaction update the bot gets, or None when it gets none
        (nothing changed, or a group where the bot is not an administrator). Like `press`, it
        lets anyone react anywhere, so a test can forge what Telegram would not send."""
        return self.sandbox.state.react(user["id"], message["chat"]["id"], message["message_id"], list(emoji))

    def react_anonymously(self, message: Json, counts: dict[str, int]) -> Json | None:
        """The message's anonymous reactions (a channel's) are now `counts`; returns the
        message_reaction_count update the bot gets, or None."""
        return self.sandbox.state.count_reactions(message["chat"]["id"], message["message_id"], counts)

    def reactions(self, chat_id: int, message_id: int) -> dict[str, int]:
        """A message's reactions: emoji -> how many (people's and anonymous ones)."""
        chat = self.sandbox.state.chats[chat_id]
        return {r["emoji"]: r["count"] for r in self.sandbox.state.reaction_counts(chat, message_id)}

    def press_without_message(self, user: Json, data: str, *, inline_message_id: str = "AgAAAInline") -> str:
        """A press carrying no message, as on an inline-mode message (or as a forged one);
        returns the callback query id."""
        update = self.sandbox.state.press(
            user["id"], data, chat_instance="inline", inline_message_id=inline_message_id
        )
        return str(update["callback_query"]["id"])

    def inline_query(self, user: Json, query: str, *, chat_type: str = "private") -> str:
        """`user` types "@bot query" in a chat; returns the inline query id."""
        return str(
            self.sandbox.state.inline_query(user["id"], query, chat_type=chat_type)["inline_query"]["id"]
        )

    async def wait_for_inline_results(self, query_id: str, *, timeout: float = 15.0) -> list[Json]:
        """The results the bot answered the inline query with (their message text parsed)."""
        asked = self.sandbox.state.inline_queries[query_id]
        await self.wait_until(lambda: asked["answered"], timeout=timeout, what=f"inline answer {query_id}")
        return list(asked["results"])

    def choose_inline_result(self, user: Json, chat_id: int, query_id: str, result_id: str) -> Json:
        """`user` picks a result: it is posted in the chat via the bot; returns that message."""
        return self.sandbox.state.choose_inline_result(user["id"], chat_id, query_id, result_id)

    # -- reading what the bot did ------------------------------------------------------------

    def bot_messages(self, chat_id: int) -> list[Json]:
        """Messages the bot has sent in a chat (current state, edits applied)."""
        chat = self.sandbox.state.chats[chat_id]
        return [m for m in chat.messages.values() if m["from"]["id"] == self.bot["id"]]

    def message(self, chat_id: int, message_id: int) -> Json:
        """A message's current state."""
        return self.sandbox.state.chats[chat_id].messages[message_id]

    async def wait_for_bot_messages(
        self, chat_id: int, count: int = 1, *, timeout: float = 15.0, after: int = 0
    ) -> list[Json]:
        """Wait until the bot has sent `count` messages in the chat beyond the first `after`."""
        found: list[Json] = await self.wait_until(
            lambda: (msgs := self.bot_messages(chat_id)[after:]) and len(msgs) >= count and msgs[:count],
            timeout=timeout,
            what=f"{count} bot message(s) in chat {chat_id}",
        )
        return found

    async def wait_for_answer(self, query_id: str, *, timeout: float = 15.0) -> Json:
        """Wait until a callback query has been answered; returns {"text", "show_alert"}."""
        answer: Json = await self.wait_until(
            lambda: (q := self.sandbox.state.queries[query_id])["answered"] and q,
            timeout=timeout,
            what=f"an answer to callback query {query_id}",
        )
        return answer

    async def wait_until(self, probe: Any, *, timeout: float = 15.0, what: str = "a condition") -> Any:
        """Poll `probe()` until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
            await asyncio.sleep(0.02)

    def calls(self, method: str | None = None) -> list[Call]:
        """Bot API calls received (optionally of one method)."""
        return [c for c in self.sandbox.state.calls if method is None or c.method.lower() == method.lower()]

    def answers(self) -> dict[str, Json]:
        """Callback queries and how they were answered."""
        return self.sandbox.state.queries

    def chat_actions(self, chat_id: int) -> list[str]:
        """Chat actions ("typing", ...) the bot sent to a chat."""
        return [action for cid, action, _ in self.sandbox.state.chat_actions if cid == chat_id]

    def commands(self, language_code: str = "") -> list[Json]:
        """The command menu set with setMyCommands (default scope)."""
        return self.sandbox.state.commands.get(("default", language_code), [])

    def pending_updates(self) -> int:
        """Updates not yet confirmed by the bot."""
        return len(self.sandbox.state.updates)
