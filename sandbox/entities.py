"""Parsing formatted text the way the Bot API does: HTML or MarkdownV2 -> plain text + entities.

Offsets and lengths are in UTF-16 code units, as Telegram counts them. Text that Telegram
would refuse raises `EntityError` with the same kind of message ("can't parse entities: ...").
"""

from __future__ import annotations

import html
from html.parser import HTMLParser
from typing import Any

Entity = dict[str, Any]

_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
    "tg-spoiler": "spoiler",
    "blockquote": "blockquote",
}
_MD_RESERVED = set("_*[]()~`>#+-=|{}.!")
_CANT = "Bad Request: can't parse entities: "


class EntityError(ValueError):
    """Text Telegram would refuse to parse."""


def u16(text: str) -> int:
    """Length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


class _Html(HTMLParser):
    def __init__(self) -> None:
        # Character references are handled one by one: with convert_charrefs the parser holds
        # text back, and offsets would be computed before the text arrives.
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []
        self.at = 0  # UTF-16 position (HTMLParser owns `self.offset`)
        self.stack: list[tuple[str, int, dict[str, str]]] = []
        self.entities: list[Entity] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "span" and values.get("class") == "tg-spoiler":
            tag = "tg-spoiler"
        if tag not in _HTML_TAGS:
            raise EntityError(
                f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}" at byte offset {self.at}'
            )
        if tag == "a" and not values.get("href"):
            raise EntityError("Bad Request: can't parse entities: Can't find end of href attribute")
        self.stack.append((tag, self.at, values))

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self.stack and self.stack[-1][0] == "tg-spoiler":
            tag = "tg-spoiler"
        if not self.stack or self.stack[-1][0] != tag:
            raise EntityError(
                f"{_CANT}Unmatched end tag at byte offset {self.at}, "
                f'expected "</{self.stack[-1][0] if self.stack else ""}>", found "</{tag}>"'
            )
        name, start, values = self.stack.pop()
        length = self.at - start
        if length:
            entity: Entity = {"type": _HTML_TAGS[name], "offset": start, "length": length}
            if name == "a":
                entity["url"] = values["href"]
            if name == "pre" and values.get("class", "").startswith("language-"):
                entity["language"] = values["class"][len("language-") :]
            self.entities.append(entity)

    def handle_data(self, data: str) -> None:
        self.out.append(data)
        self.at += u16(data)

    def handle_entityref(self, name: str) -> None:
        if name not in ("lt", "gt", "amp", "quot"):
            raise EntityError(f'Bad Request: can\'t parse entities: Unsupported HTML entity "&{name};"')
        self.handle_data(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.handle_data(html.unescape(f"&#{name};"))


def parse_html(text: str) -> tuple[str, list[Entity]]:
    """HTML parse mode: the supported tags become entities; anything else is refused."""
    parser = _Html()
    parser.feed(text)
    parser.close()
    if parser.stack:
        raise EntityError(f'{_CANT}Can\'t find end tag corresponding to start tag "{parser.stack[-1][0]}"')
    return "".join(parser.out), sorted(parser.entities, key=lambda e: (e["offset"], -e["length"]))


_MD_MARKS = [("||", "spoiler"), ("__", "underline"), ("*", "bold"), ("_", "italic"), ("~", "strikethrough")]


def parse_markdown_v2(text: str) -> tuple[str, list[Entity]]:
    """MarkdownV2: *bold* _italic_ __underline__ ~strike~ ||spoiler|| `code` ```pre``` [t](url)."""
    out: list[str] = []
    offset = 0
    entities: list[Entity] = []
    open_marks: list[tuple[str, int]] = []
    link_start: int | None = None
    i = 0

    def emit(chunk: str) -> None:
        nonlocal offset
        out.append(chunk)
        offset += u16(chunk)

    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text):
                raise EntityError("Bad Request: can't parse entities: Can't find end of escape sequence")
            emit(text[i + 1])
            i += 2
            continue
        if text.startswith("```", i):
            end = text.find("```", i + 3)
            if end < 0:
                raise EntityError("Bad Request: can't parse entities: Can't find end of pre entity")
            body = text[i + 3 : end]
            language = ""
            if "\n" in body and body.split("\n", 1)[0].strip():
                language, body = body.split("\n", 1)
            start = offset
            emit(body.replace("\\`", "`").replace("\\\\", "\\"))
            entity: Entity = {"type": "pre", "offset": start, "length": offset - start}
            if language:
                entity["language"] = language.strip()
            entities.append(entity)
            i = end + 3
            continue
        if ch == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise EntityError("Bad Request: can't parse entities: Can't find end of code entity")
            start = offset
            emit(text[i + 1 : end].replace("\\`", "`").replace("\\\\", "\\"))
            entities.append({"type": "code", "offset": start, "length": offset - start})
            i = end + 1
            continue
        if ch == "[":
            link_start = offset
            i += 1
            continue
        if ch == "]" and link_start is not None and text.startswith("(", i + 1):
            end = text.find(")", i + 2)
            if end < 0:
                raise EntityError("Bad Request: can't parse entities: Can't find end of a URL")
            entities.append(
                {
                    "type": "text_link",
                    "offset": link_start,
                    "length": offset - link_start,
                    "url": text[i + 2 : end],
                }
            )
            link_start = None
            i = end + 1
            continue
        mark = next((m for m, _ in _MD_MARKS if text.startswith(m, i)), None)
        if mark is not None:
            if open_marks and open_marks[-1][0] == mark:
                _, start = open_marks.pop()
                kind = dict(_MD_MARKS)[mark]
                if offset > start:
                    entities.append({"type": kind, "offset": start, "length": offset - start})
            else:
                open_marks.append((mark, offset))
            i += len(mark)
            continue
        if ch in _MD_RESERVED:
            raise EntityError(
                f"{_CANT}Character '{ch}' is reserved and must be escaped with the preceding '\\'"
            )
        emit(ch)
        i += 1
    if open_marks:
        kind = dict(_MD_MARKS)[open_marks[-1][0]]
        raise EntityError(
            f"{_CANT}Can't find end of {kind.capitalize()} entity at byte offset {open_marks[-1][1]}"
        )
    if link_start is not None:
        raise EntityError("Bad Request: can't parse entities: Can't find end of text URL")
    return "".join(out), sorted(entities, key=lambda e: (e["offset"], -e["length"]))


def auto_entities(text: str, bot_username: str) -> list[Entity]:
    """Entities Telegram adds to a user's plain message: /commands, @mentions, #hashtags."""
    entities: list[Entity] = []
    i = 0
    while i < len(text):
        ch = text[i]
        starts_word = i == 0 or not (text[i - 1].isalnum() or text[i - 1] in "_/@")
        if ch in "/@#" and starts_word:
            j = i + 1
            while j < len(text) and (text[j].isalnum() or text[j] == "_" or (ch == "/" and text[j] == "@")):
                j += 1
            if j - i > 1:
                kind = {"/": "bot_command", "@": "mention", "#": "hashtag"}[ch]
                entities.append({"type": kind, "offset": u16(text[:i]), "length": u16(text[i:j])})
            i = j
            continue
        i += 1
    return entities
