"""The sandbox HTTP server: Bot API at /bot<token>/<method>, and the web chat at /.

Point python-telegram-bot at it with `ApplicationBuilder().base_url("http://HOST:PORT/bot")`,
exactly as one points it at Telegram's own local Bot API server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox.api import ApiError, BotApi, UploadedFile
from sandbox.faults import Faults
from sandbox.state import Call, ChatState, Json, SandboxState
from sandbox.webhook import WebhookDelivery

log = logging.getLogger(__name__)
WEB = Path(__file__).parent / "web"
DEFAULT_TOKEN = "123456789:SANDBOXsandboxSANDBOXsandboxSANDBOXs"
# Bot API methods the terminal log leaves out: the bot's polling and look-ups are not news.
QUIET_METHODS = ("get", "setmycommands", "deletemycommands", "setwebhook", "deletewebhook", "logout", "close")


def short(text: object, limit: int = 60) -> str:
    """Text for one log line: newlines folded, long text cut with an ellipsis."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class SandboxApp:
    """The aiohttp application and the state behind it."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        bot_username: str = "lstm_sandbox_bot",
        bot_name: str = "LSTM bot",
    ) -> None:
        bot_id = int(token.split(":", 1)[0])
        self.state = SandboxState(token=token, bot_id=bot_id, bot_username=bot_username, bot_name=bot_name)
        self.faults = Faults()
        self.webhook = WebhookDelivery(self.state)
        self.api = BotApi(self.state, deliver_webhook=self.webhook.kick)
        self._last_reply: dict[int, float] = {}  # chat id -> when the bot last sent a message there
        self.app = web.Application(client_max_size=8 * 1024 * 1024)
        self.app.router.add_route("*", "/bot{token}/{method}", self.handle_api)
        self.app.router.add_get("/", self.index)
        self.app.router.add_get("/favicon.ico", self.favicon)
        self.app.router.add_static("/static", WEB)
        self.app.router.add_get("/sandbox/state", self.ui_state)
        self.app.router.add_get("/sandbox/file/{unique_id}", self.ui_file)
        self.app.router.add_post("/sandbox/send", self.ui_send)
        self.app.router.add_post("/sandbox/press", self.ui_press)
        self.app.router.add_post("/sandbox/react", self.ui_react)
        self.app.router.add_post("/sandbox/inline", self.ui_inline)
        self.app.router.add_get("/sandbox/inline/{query_id}", self.ui_inline_results)
        self.app.router.add_post("/sandbox/choose", self.ui_choose)
        self.app.on_shutdown.append(self._stop_webhook)

    # -- Bot API -----------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> Json:
        params: Json = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if not isinstance(body, dict):
                    raise ApiError(400, "Bad Request: JSON object expected")
                params.update(body)
            else:
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, str):
                        params[key] = value
                    elif isinstance(
                        value, web.FileField
                    ):  # an uploaded file (sendPhoto): kept as its name and bytes
                        params[key] = UploadedFile(value.filename, value.file.read())
        return params

    async def handle_api(self, request: web.Request) -> web.StreamResponse:
        """One Bot API call: token check, faults, dispatch, Telegram's JSON envelope."""
        method = request.match_info["method"]
        if request.match_info["token"] != self.state.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        try:
            params = await self._params(request)
        except (ApiError, json.JSONDecodeError) as exc:
            error = exc if isinstance(exc, ApiError) else ApiError(400, "Bad Request: can't parse JSON")
            return web.json_response(error.body(), status=error.code)
        self.state.calls.append(Call(method, params, time.monotonic()))
        fault = self.faults.take(method)
        if fault is not None:
            if fault.kind == "429":
                error = ApiError(
                    429,
                    f"Too Many Requests: retry after {fault.retry_after}",
                    {"retry_after": fault.retry_after},
                )
                return web.json_response(error.body(), status=429)
            if fault.kind == "500":
                return web.json_response(
                    {"ok": False, "error_code": 500, "description": "Internal Server Error"}, status=500
                )
            if fault.kind == "drop":
                if request.transport is not None:
                    request.transport.close()  # the client sees the connection cut mid-request
                raise asyncio.CancelledError
            await asyncio.sleep(fault.hang_s)  # "hang": answer late (the client may have given up)
        try:
            result = await self.api.call(method, params)
        except ApiError as exc:
            log.info("bot %s failed: %s", method, exc.body()["description"])
            return web.json_response(exc.body(), status=exc.code)
        self._log_call(method, params)
        if isinstance(result, dict) and result.get("from", {}).get("id") == self.state.bot["id"]:
            self._last_reply[result["chat"]["id"]] = time.monotonic()  # ends "typing…" there
        return web.json_response({"ok": True, "result": result})

    def _log_call(self, method: str, params: Json) -> None:
        """One terminal line for what the bot did (sent, edited, answered), none for polling."""
        if method.lower().startswith(QUIET_METHODS):
            return
        where = f" in chat {params['chat_id']}" if "chat_id" in params else ""
        what = params.get("text") or params.get("action")
        log.info("bot %s%s%s", method, where, f": {short(what)}" if what else "")

    async def _stop_webhook(self, app: web.Application) -> None:
        await self.webhook.stop()

    # -- the web page ------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.FileResponse:
        """The chat page."""
        return web.FileResponse(WEB / "index.html")

    async def favicon(self, request: web.Request) -> web.FileResponse:
        """The icon, for browsers that ask for /favicon.ico whatever the page declares."""
        return web.FileResponse(WEB / "favicon.svg", headers={"Content-Type": "image/svg+xml"})

    async def ui_state(self, request: web.Request) -> web.Response:
        """Everything the page shows; long-polls when `since` is the current version."""
        since = int(request.query.get("since", "-1"))
        if since >= self.state.version:
            await self.state.wait_for_change(since, 25.0)
        return web.json_response(self.snapshot())

    def snapshot(self) -> Json:
        """Users, chats with their messages, commands, recent actions and toasts."""
        now = time.monotonic()
        # A chat action lasts 5 s, or until the bot's next message in that chat (as in Telegram).
        typing: dict[int, float] = {}  # chat id -> seconds of "typing…" left
        for chat_id, _, at in self.state.chat_actions:
            if now - at < 5 and at > self._last_reply.get(chat_id, -1.0):
                typing[chat_id] = max(typing.get(chat_id, 0.0), 5 - (now - at))
        toasts = [
            {"id": qid, "text": q["text"], "alert": q["show_alert"]}
            for qid, q in self.state.queries.items()
            if q["answered"] and q["text"] and now - q.get("at", now) < 30
        ]
        chats = [
            {
                "id": chat_id,
                "info": chat.info,
                "members": sorted(chat.members),
                "typing": chat_id in typing,
                "typing_s": round(typing.get(chat_id, 0.0), 2),
                "messages": [self._with_reactions(chat, m) for m in chat.messages.values()],
            }
            for chat_id, chat in self.state.chats.items()
        ]
        commands: dict[str, Any] = {
            lang or "default": cmds for (_, lang), cmds in self.state.commands.items()
        }
        return {
            "version": self.state.version,
            "bot": self.state.bot,
            "users": list(self.state.users.values()),
            "chats": chats,
            "commands": commands,
            "toasts": toasts,
        }

    def _with_reactions(self, chat: ChatState, message: Json) -> Json:
        """A message for the page, with its reactions (not part of a Bot API Message)."""
        reactions = self.state.reaction_counts(chat, message["message_id"])
        return {**message, "reactions": reactions} if reactions else message

    async def ui_file(self, request: web.Request) -> web.Response:
        """The bytes of a photo the bot sent, for the page's <img> (by its file_unique_id)."""
        stored = self.state.files.get(request.match_info["unique_id"])
        if stored is None:
            raise web.HTTPNotFound()
        # The id is a hash of the content: the same URL always means the same bytes.
        return web.Response(
            body=stored.content,
            content_type=stored.content_type,
            headers={"Cache-Control": "public, max-age=31536000, immutable"},
        )

    async def ui_send(self, request: web.Request) -> web.Response:
        """A person typed a message as one of the simulated users."""
        body = await request.json()
        user_id, chat_id = int(body["user_id"]), int(body["chat_id"])
        chat = self.state.chat(chat_id)
        text = str(body.get("text", ""))
        if chat is None or user_id not in self.state.users or user_id not in chat.members or not text.strip():
            return web.json_response({"ok": False}, status=400)
        reply_to = body.get("reply_to")
        name = self.state.users[user_id]["first_name"]
        log.info("%s (user %d) in chat %d: %s", name, user_id, chat_id, short(text))
        self.state.user_message(user_id, chat_id, text[:4096], reply_to=int(reply_to) if reply_to else None)
        return web.json_response({"ok": True})

    async def ui_press(self, request: web.Request) -> web.Response:
        """A person pressed an inline button as one of the simulated users."""
        body = await request.json()
        user_id, chat_id, message_id = int(body["user_id"]), int(body["chat_id"]), int(body["message_id"])
        chat = self.state.chat(chat_id)
        if chat is None or message_id not in chat.messages or user_id not in self.state.users:
            return web.json_response({"ok": False}, status=400)
        name = self.state.users[user_id]["first_name"]
        log.info("%s (user %d) in chat %d pressed a button: %s", name, user_id, chat_id, short(body["data"]))
        self.state.callback_query(user_id, chat_id, message_id, str(body["data"]))
        return web.json_response({"ok": True})

    async def ui_react(self, request: web.Request) -> web.Response:
        """A person clicked a reaction under a message: theirs is set, or taken back."""
        body = await request.json()
        user_id, chat_id, message_id = int(body["user_id"]), int(body["chat_id"]), int(body["message_id"])
        emoji = str(body.get("emoji", ""))
        chat = self.state.chat(chat_id)
        if (
            chat is None
            or message_id not in chat.messages
            or user_id not in chat.members
            or not emoji
            or len(emoji) > 8  # one emoji (a few code points at most)
        ):
            return web.json_response({"ok": False}, status=400)
        name = self.state.users[user_id]["first_name"]
        log.info(
            "%s (user %d) in chat %d reacted %s to message %d", name, user_id, chat_id, emoji, message_id
        )
        self.state.toggle_reaction(user_id, chat_id, message_id, emoji)
        return web.json_response({"ok": True})

    async def ui_inline(self, request: web.Request) -> web.Response:
        """A person typed "@bot query" in the composer: an inline query (its id comes back)."""
        body = await request.json()
        user_id, chat_id = int(body["user_id"]), int(body["chat_id"])
        chat = self.state.chat(chat_id)
        query = str(body.get("query", ""))[:256]  # Telegram's limit on an inline query
        if chat is None or user_id not in self.state.users:
            return web.json_response({"ok": False}, status=400)
        update = self.state.inline_query(user_id, query, chat_type=str(chat.info["type"]))
        return web.json_response({"ok": True, "query_id": update["inline_query"]["id"]})

    async def ui_inline_results(self, request: web.Request) -> web.Response:
        """The bot's answer to an inline query, once it has answered (long-polls a few seconds)."""
        asked = self.state.inline_queries.get(request.match_info["query_id"])
        if asked is None:
            return web.json_response({"ok": False}, status=404)
        if not asked["answered"]:
            await self.state.wait_for_change(self.state.version, 5.0)
        results = [
            {"id": r["id"], "title": r.get("title", ""), "description": r.get("description", "")}
            for r in asked["results"]
        ]
        return web.json_response({"ok": True, "answered": asked["answered"], "results": results})

    async def ui_choose(self, request: web.Request) -> web.Response:
        """A person picked an inline result: it is posted in the chat via the bot."""
        body = await request.json()
        user_id, chat_id = int(body["user_id"]), int(body["chat_id"])
        query_id, result_id = str(body["query_id"]), str(body["result_id"])
        chat = self.state.chat(chat_id)
        asked = self.state.inline_queries.get(query_id)
        if (
            chat is None
            or asked is None
            or asked["user_id"] != user_id
            or result_id not in {r["id"] for r in asked["results"]}
        ):
            return web.json_response({"ok": False}, status=400)
        self.state.choose_inline_result(user_id, chat_id, query_id, result_id)
        return web.json_response({"ok": True})


def demo_world(sandbox: SandboxApp) -> None:
    """A private chat for each of three people and a group with all of them."""
    ann = sandbox.state.add_user("Ann", language_code="en", username="ann")
    bo = sandbox.state.add_user("Bo", language_code="en", username="bo")
    mei = sandbox.state.add_user("Mei", language_code="zh-hans", username="mei")
    # Ann created it; the bot is an administrator, so it gets the group's reactions.
    members = [ann["id"], bo["id"], mei["id"]]
    sandbox.state.add_group("Book club", members, admins=[ann["id"], sandbox.state.bot["id"]])


async def serve(
    host: str,
    port: int,
    *,
    token: str = DEFAULT_TOKEN,
    bot_username: str = "lstm_sandbox_bot",
    demo: bool = True,
) -> tuple[SandboxApp, web.AppRunner]:
    """Start the sandbox on host:port; returns the app and the runner to clean up."""
    sandbox = SandboxApp(token=token, bot_username=bot_username)
    if demo:
        demo_world(sandbox)
    runner = web.AppRunner(sandbox.app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return sandbox, runner
