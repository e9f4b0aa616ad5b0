"""What a message says to the bot: a command's argument, a mention cut out, a storable seed."""

from __future__ import annotations

from telegram import Message, MessageEntity


def storable(seed: str) -> str:
    """The seed as it is generated from and stored: NUL characters and lone surrogates removed
    (PostgreSQL text cannot hold NUL, UTF-8 cannot hold a lone surrogate, and no model has
    either in its vocabulary), everything else verbatim."""
    return seed.replace("\x00", "").encode("utf-8", "ignore").decode("utf-8") if seed else seed


def command_argument(message: Message) -> str:
    """The text after the leading /command (newlines kept), or "" when there is none."""
    raw = message.text or ""
    for entity in message.entities:
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            return raw[len(message.parse_entity(entity)) :].strip()
    return raw.strip()


def without_entity(text_: str, entity: MessageEntity) -> str:
    """The text with one entity cut out, one space where it was (ends stripped).

    Telegram counts entity offsets in UTF-16 code units (an emoji is two), so the cut is made
    in UTF-16, as python-telegram-bot's parse_entity does, never on Python characters.
    """
    units = text_.encode("utf-16-le", "surrogatepass")
    before = units[: entity.offset * 2].decode("utf-16-le", "replace")
    after = units[(entity.offset + entity.length) * 2 :].decode("utf-16-le", "replace")
    return " ".join(part for part in (before.strip(), after.strip()) if part)
