"""The Bot API methods the sandbox implements, with Telegram's answers and refusals."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

from sandbox.entities import EntityError, parse_html, parse_markdown_v2, u16
from sandbox.state import ChatState, Json, SandboxState

TEXT_LIMIT = 4096
CALLBACK_DATA_LIMIT = 64
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
INLINE_QUERY_TTL_S = 10.0  # how long Telegram waits for an answerInlineQuery


PHOTO_LIMIT = 10 * 1024 * 1024  # Telegram's limit for photos uploaded by bots
CAPTION_LIMIT = 1024


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request (only sendPhoto takes one)."""

    filename: str
    content: bytes


def picture_info(content: bytes) -> tuple[int, int, str]:
    """Width, height and MIME type of an uploaded picture; Telegram's refusal for anything else."""
    try:
        with Image.open(io.BytesIO(content)) as picture:  # reads the header only
            return picture.width, picture.height, picture.get_format_mimetype() or "application/octet-stream"
    except (UnidentifiedImageError, OSError):
        raise bad("IMAGE_PROCESS_FAILED") from None


class ApiError(Exception):
    """A refusal, rendered as {"ok": false, "error_code": ..., "description": ...}."""

    def __init__(self, code: int, description: str, parameters: Json | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters

    def body(self) -> Json:
        """The JSON body Telegram would answer with."""
        out: Json = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            out["parameters"] = self.parameters
        return out


def bad(description: str) -> ApiError:
    """A 400 Bad Request."""
    return ApiError(400, f"Bad Request: {description}")


def _json_field(params: Json, name: str) -> Any:
    """Form bodies carry nested objects as JSON strings; JSON bodies carry them as objects."""
    value = params.get(name)
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise bad(f"can't parse {name} JSON object") from None
    return value


def _int(params: Json, name: str, *, required: bool = True) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise bad(f"{name} is empty" if name != "chat_id" else "chat_id is empty")
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad(f"invalid {name} specified") from None


class BotApi:
    """Dispatches method names to handlers operating on a SandboxState."""

    def __init__(self, state: SandboxState, *, deliver_webhook: Callable[[], None] | None = None) -> None:
        self.state = state
        self._deliver_webhook = deliver_webhook or (lambda: None)
        self.methods: dict[str, Callable[[Json], Awaitable[Any]]] = {
            name.lower(): getattr(self, f"m_{name}")
            for name in (
                "getMe",
                "getUpdates",
                "setWebhook",
                "deleteWebhook",
                "getWebhookInfo",
                "logOut",
                "close",
                "sendMessage",
                "sendPhoto",
                "editMessageText",
                "editMessageReplyMarkup",
                "deleteMessage",
                "answerCallbackQuery",
                "answerInlineQuery",
                "sendChatAction",
                "setMyCommands",
                "getMyCommands",
                "deleteMyCommands",
                "getChat",
                "getChatMember",
                "getChatAdministrators",
            )
        }

    async def call(self, method: str, params: Json) -> Any:
        """Run one method; raises ApiError for refusals."""
        handler = self.methods.get(method.lower())
        if handler is None:
            raise ApiError(404, "Not Found")
        return await handler(params)

    # -- helpers -----------------------------------------------------------------------------

    def _chat(self, params: Json) -> ChatState:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise bad("chat_id is empty")
        chat = self.state.chat(chat_id)
        if chat is None:
            raise bad("chat not found")
        return chat

    def _formatted(self, params: Json, field: str = "text") -> tuple[str, list[Json]]:
        """The text (or caption) as plain text and entities, parsed by its parse_mode."""
        text = params.get(field)
        if text is None or str(text).strip() == "":
            raise bad("message text is empty")
        text = str(text)
        mode = str(params.get("parse_mode") or "").lower()
        caption = field == "caption"
        try:
            if mode == "html":
                plain, entities = parse_html(text)
            elif mode == "markdownv2":
                plain, entities = parse_markdown_v2(text)
            else:
                given = _json_field(params, "caption_entities" if caption else "entities")
                plain, entities = text, list(given or [])
        except EntityError as exc:
            raise ApiError(400, str(exc)) from None
        if not plain.strip():
            raise bad("message text is empty")
        if u16(plain) > (CAPTION_LIMIT if caption else TEXT_LIMIT):
            raise bad("message caption is too long" if caption else "message is too long")
        return plain, entities

    def _markup(self, params: Json) -> Json | None:
        markup = _json_field(params, "reply_markup")
        if not markup:
            return None
        if not isinstance(markup, dict):
            raise bad("can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode("utf-8")) <= CALLBACK_DATA_LIMIT:
                    raise bad("BUTTON_DATA_INVALID")
                if not str(button.get("text", "")).strip():
                    raise bad("text buttons are unallowed in the inline keyboard")
        return markup

    def _reply_to(self, params: Json) -> int | None:
        reply = _json_field(params, "reply_parameters")
        if isinstance(reply, dict) and reply.get("message_id") is not None:
            return int(reply["message_id"])
        return _int(params, "reply_to_message_id", required=False)

    def _message(self, chat: ChatState, params: Json, *, action: str) -> Json:
        message_id = _int(params, "message_id")
        assert message_id is not None
        message = chat.messages.get(message_id)
        if message is None or message.get("deleted"):
            raise bad(f"message to {action} not found")
        return message

    # -- updates and webhooks ----------------------------------------------------------------

    async def m_getMe(self, params: Json) -> Json:
        return {
            **self.state.bot,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def m_getUpdates(self, params: Json) -> list[Json]:
        state = self.state
        if state.webhook["url"]:
            raise ApiError(
                409,
                WEBHOOK_CONFLICT,
            )
        offset = _int(params, "offset", required=False)
        limit = max(1, min(100, _int(params, "limit", required=False) or 100))
        timeout = max(0, min(50, _int(params, "timeout", required=False) or 0))
        self._remember_allowed(params)
        if offset is not None:
            # Confirming an offset forgets every earlier update, for good.
            state.updates = [u for u in state.updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        while True:
            ready = [u for u in state.updates if state.delivers(u)]
            if ready or time.monotonic() >= deadline:
                return copy.deepcopy(ready[:limit])
            await state.wait_for_change(state.version, deadline - time.monotonic())

    def _remember_allowed(self, params: Json) -> None:
        """allowed_updates, when given, holds until changed (Telegram: "if not specified, the
        previous setting will be used"), for getUpdates and the webhook alike."""
        allowed = _json_field(params, "allowed_updates")
        if allowed is not None:
            if not isinstance(allowed, list):
                raise bad("can't parse allowed_updates JSON object")
            self.state.allowed_updates = [str(kind) for kind in allowed]

    async def m_setWebhook(self, params: Json) -> bool:
        url = str(params.get("url") or "")
        if url and not url.startswith(("http://", "https://")):
            raise bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        self._remember_allowed(params)
        self.state.webhook = {
            "url": url,
            "secret_token": secret,
            "allowed_updates": _json_field(params, "allowed_updates"),
            "max_connections": _int(params, "max_connections", required=False),
        }
        if str(params.get("drop_pending_updates", "")).lower() in ("true", "1"):
            self.state.updates.clear()
        self.state.touch()
        self._deliver_webhook()
        return True

    async def m_deleteWebhook(self, params: Json) -> bool:
        self.state.webhook = {"url": "", "secret_token": None, "allowed_updates": None}
        if str(params.get("drop_pending_updates", "")).lower() in ("true", "1"):
            self.state.updates.clear()
        return True

    async def m_getWebhookInfo(self, params: Json) -> Json:
        info: Json = {
            "url": self.state.webhook["url"],
            "has_custom_certificate": False,
            "pending_update_count": len(self.state.updates),
            "max_connections": self.state.webhook.get("max_connections") or 40,
        }
        if self.state.webhook["allowed_updates"]:
            info["allowed_updates"] = self.state.webhook["allowed_updates"]
        return info

    async def m_logOut(self, params: Json) -> bool:
        return True

    async def m_close(self, params: Json) -> bool:
        return True

    # -- messages ----------------------------------------------------------------------------

    async def m_sendMessage(self, params: Json) -> Json:
        chat = self._chat(params)
        text, entities = self._formatted(params)
        markup = self._markup(params)
        reply_to = self._reply_to(params)
        if reply_to is not None and reply_to not in chat.messages:
            reply = _json_field(params, "reply_parameters") or {}
            if not (isinstance(reply, dict) and reply.get("allow_sending_without_reply")):
                raise bad("message to be replied not found")
        message = self.state.bot_message(chat, text, entities, reply_markup=markup, reply_to=reply_to)
        return copy.deepcopy(message)

    async def m_sendPhoto(self, params: Json) -> Json:
        """A photo upload: its bytes are kept (the web page shows them) under a content hash."""
        chat = self._chat(params)
        photo = params.get("photo")
        if not isinstance(photo, UploadedFile):
            raise bad("there is no photo in the request")  # file ids and URLs are not supported
        if not photo.content or len(photo.content) > PHOTO_LIMIT:
            raise bad("PHOTO_INVALID_DIMENSIONS" if photo.content else "file must be non-empty")
        width, height, content_type = picture_info(photo.content)
        digest = hashlib.sha256(photo.content).hexdigest()[:16]
        message: Json = {
            "date": int(time.time()),
            "chat": dict(chat.info),
            "from": dict(self.state.bot),
            "photo": [
                {
                    "file_id": f"photo-{digest}",
                    "file_unique_id": digest,
                    "width": width,
                    "height": height,
                    "file_size": len(photo.content),
                }
            ],
        }
        if params.get("caption"):
            message["caption"], entities = self._formatted(params, "caption")
            if entities:
                message["caption_entities"] = entities
        markup = self._markup(params)
        if markup:
            message["reply_markup"] = markup
        replied = self._reply_to(params)
        if replied is not None and replied in chat.messages:
            quoted = copy.deepcopy(chat.messages[replied])
            quoted.pop("reply_to_message", None)
            message["reply_to_message"] = quoted
        self.state.keep_file(digest, content_type, photo.content)
        return copy.deepcopy(self.state.store_message(chat, message))

    async def m_editMessageText(self, params: Json) -> Json:
        chat = self._chat(params)
        message = self._message(chat, params, action="edit")
        text, entities = self._formatted(params)
        markup = self._markup(params)
        if (
            message.get("text") == text
            and message.get("entities", []) == entities
            and message.get("reply_markup") == markup
        ):
            raise bad(NOT_MODIFIED.removeprefix("Bad Request: "))
        message["text"] = text
        message.pop("entities", None)
        if entities:
            message["entities"] = entities
        return self._edited(message, markup)

    def _edited(self, message: Json, markup: Json | None) -> Json:
        """Set the new keyboard (or none), stamp the edit, and answer with the message."""
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        self.state.touch()
        return copy.deepcopy(message)

    async def m_editMessageReplyMarkup(self, params: Json) -> Json:
        chat = self._chat(params)
        message = self._message(chat, params, action="edit")
        markup = self._markup(params)
        if message.get("reply_markup") == markup:
            raise bad(NOT_MODIFIED.removeprefix("Bad Request: "))
        return self._edited(message, markup)

    async def m_deleteMessage(self, params: Json) -> bool:
        chat = self._chat(params)
        message = self._message(chat, params, action="delete")
        del chat.messages[message["message_id"]]
        self.state.touch()
        return True

    async def m_answerCallbackQuery(self, params: Json) -> bool:
        query = self.state.queries.get(str(params.get("callback_query_id", "")))
        if query is None or query["answered"]:
            raise bad(QUERY_INVALID.removeprefix("Bad Request: "))
        text = params.get("text")
        if text is not None and len(str(text)) > 200:
            raise bad("MESSAGE_TOO_LONG")
        query.update(
            answered=True, text=text, show_alert=str(params.get("show_alert", "")).lower() in ("true", "1")
        )
        self.state.touch()
        return True

    async def m_sendChatAction(self, params: Json) -> bool:
        chat = self._chat(params)
        action = str(params.get("action") or "")
        if action not in (
            "typing",
            "upload_photo",
            "record_video",
            "upload_video",
            "record_voice",
            "upload_voice",
            "upload_document",
            "choose_sticker",
            "find_location",
            "record_video_note",
            "upload_video_note",
        ):
            raise bad("wrong parameter action in request")
        self.state.chat_actions.append((chat.info["id"], action, time.monotonic()))
        self.state.touch()
        return True

    # -- commands and chats ------------------------------------------------------------------

    def _command_key(self, params: Json) -> tuple[str, str]:
        scope = _json_field(params, "scope") or {"type": "default"}
        scope_type = scope.get("type", "default") if isinstance(scope, dict) else "default"
        return str(scope_type), str(params.get("language_code") or "")

    async def m_setMyCommands(self, params: Json) -> bool:
        commands = _json_field(params, "commands")
        if not isinstance(commands, list):
            raise bad("can't parse commands JSON object")
        for command in commands:
            name = str(command.get("command", ""))
            if not (1 <= len(name) <= 32 and name.replace("_", "").isalnum() and name.islower()):
                raise bad("BOT_COMMAND_INVALID")
        self.state.commands[self._command_key(params)] = commands
        self.state.touch()
        return True

    async def m_getMyCommands(self, params: Json) -> list[Json]:
        return copy.deepcopy(self.state.commands.get(self._command_key(params), []))

    async def m_deleteMyCommands(self, params: Json) -> bool:
        self.state.commands.pop(self._command_key(params), None)
        return True

    async def m_answerInlineQuery(self, params: Json) -> bool:
        """Keep the results (with their message text parsed as Telegram would) for the asker."""
        asked = self.state.inline_queries.get(str(params.get("inline_query_id", "")))
        # Telegram drops a query's answer after about 10 seconds ("query is too old").
        if asked is None or asked["answered"] or time.monotonic() - asked["at"] > INLINE_QUERY_TTL_S:
            raise bad("query is too old and response timeout expired or query ID is invalid")
        results = _json_field(params, "results") or []
        if not isinstance(results, list) or len(results) > 50:
            raise bad("RESULTS_TOO_MUCH")
        parsed: list[Json] = []
        for result in results:
            if not isinstance(result, dict) or not result.get("id") or result.get("type") != "article":
                raise bad("RESULT_ID_INVALID")
            content = dict(result.get("input_message_content") or {})
            plain, entities = self._formatted(
                {"text": content.get("message_text"), "parse_mode": content.get("parse_mode")}
            )
            parsed.append({**result, "input_message_content": {"text": plain, "entities": entities}})
        if len({r["id"] for r in parsed}) != len(parsed):
            raise bad("RESULT_ID_DUPLICATE")
        asked.update(answered=True, results=parsed, cache_time=params.get("cache_time"))
        self.state.touch()
        return True

    async def m_getChat(self, params: Json) -> Json:
        chat = self._chat(params)
        return {**chat.info, "accent_color_id": 0, "max_reaction_count": 11}

    def _member(self, chat: ChatState, user_id: int) -> Json:
        user = self.state.users.get(user_id) or (self.state.bot if user_id == self.state.bot["id"] else None)
        if user is None:
            raise bad("user not found")
        if chat.info["type"] == "private" or user_id not in chat.admins:
            status = "member" if user_id in chat.members or user_id == self.state.bot["id"] else "left"
            return {"status": status, "user": dict(user)}
        creator = sorted(chat.admins)[0] == user_id
        if creator:
            return {"status": "creator", "user": dict(user), "is_anonymous": False}
        rights = dict.fromkeys(
            (
                "can_be_edited",
                "is_anonymous",
                "can_manage_chat",
                "can_delete_messages",
                "can_manage_video_chats",
                "can_restrict_members",
                "can_promote_members",
                "can_change_info",
                "can_invite_users",
                "can_post_stories",
                "can_edit_stories",
                "can_delete_stories",
            ),
            False,
        )
        rights.update(can_manage_chat=True, can_delete_messages=True)
        return {"status": "administrator", "user": dict(user), **rights}

    async def m_getChatMember(self, params: Json) -> Json:
        chat = self._chat(params)
        user_id = _int(params, "user_id")
        assert user_id is not None
        return self._member(chat, user_id)

    async def m_getChatAdministrators(self, params: Json) -> list[Json]:
        chat = self._chat(params)
        if chat.info["type"] == "private":
            raise bad("there are no administrators in the private chat")
        return [self._member(chat, uid) for uid in sorted(chat.admins)]
