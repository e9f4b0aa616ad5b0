"""Message reactions as ratings: which emoji mean 👍 and which 👎, and what a change of a
user's reactions says.

The mapping (README, "Reactions as ratings"): 👍 ❤ 🔥 🥰 👏 😁 🤩 like, 👎 💩 🤮 🥱 dislike;
every other reaction (other emoji, custom emoji, paid stars) is ignored. A user may keep
several reactions on one message (Telegram Premium): the newest mapped one decides. Telegram
lists a user's reactions in the order they were set, so the newest is the last one listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from telegram import ReactionCount, ReactionType, ReactionTypeEmoji

from bot.db.models import DOWN, UP

LIKE: tuple[str, ...] = ("👍", "❤", "🔥", "🥰", "👏", "😁", "🤩")
DISLIKE: tuple[str, ...] = ("👎", "💩", "🤮", "🥱")
SCORES: dict[str, int] = {**dict.fromkeys(LIKE, UP), **dict.fromkeys(DISLIKE, DOWN)}
_VARIATION = "\ufe0f"  # clients may send "❤️" for Telegram's "❤": the same reaction


def emoji_of(reaction: ReactionType) -> str | None:
    """The reaction's emoji when it is one the mapping knows, else None."""
    if not isinstance(reaction, ReactionTypeEmoji):
        return None
    emoji = reaction.emoji.replace(_VARIATION, "")
    return emoji if emoji in SCORES else None


def mapped(reactions: Sequence[ReactionType]) -> list[str]:
    """The liked and disliked emoji among these reactions, in their order."""
    return [e for e in map(emoji_of, reactions) if e is not None]


@dataclass(frozen=True, slots=True)
class Change:
    """What a change of one user's reactions says about their rating."""

    score: int | None  # the rating the mapped reactions now express (None: none left)
    added: bool  # a mapped reaction was added: it sets the rating whatever set it before


def change_of(old: Sequence[ReactionType], new: Sequence[ReactionType]) -> Change | None:
    """The rating change, or None when no liked or disliked reaction came or went (a change of
    other emoji alone leaves the rating alone, even one given with a button)."""
    before, after = mapped(old), mapped(new)
    if before == after:
        return None
    added = [e for e in after if e not in before]
    if added:
        return Change(SCORES[added[-1]], True)
    # Only removals: the newest mapped reaction still set, if any, is what the user says now.
    return Change(SCORES[after[-1]] if after else None, False)


def tally(reactions: Sequence[ReactionCount]) -> tuple[int, int]:
    """Anonymous reactions on a message: how many are likes and how many dislikes."""
    likes = dislikes = 0
    for counted in reactions:
        emoji = emoji_of(counted.type)
        if emoji is None:
            continue
        if SCORES[emoji] == UP:
            likes += counted.total_count
        else:
            dislikes += counted.total_count
    return likes, dislikes
