"""The reaction mapping: which emoji rate, and what a change of one user's reactions says."""

from __future__ import annotations

from telegram import ReactionCount, ReactionTypeCustomEmoji, ReactionTypeEmoji, ReactionTypePaid

from bot.db.models import DOWN, UP
from bot.reactions import DISLIKE, LIKE, Change, change_of, mapped, tally


def emoji(*names: str) -> list[ReactionTypeEmoji]:
    return [ReactionTypeEmoji(name) for name in names]


def test_the_documented_mapping() -> None:
    assert LIKE == ("👍", "❤", "🔥", "🥰", "👏", "😁", "🤩")
    assert DISLIKE == ("👎", "💩", "🤮", "🥱")
    # "❤️" with the variation selector is Telegram's "❤"; others (and custom emoji) do not rate.
    others = [ReactionTypeCustomEmoji("5368324170671202286"), ReactionTypePaid()]
    assert mapped([*emoji("❤️", "🎉", "🤔"), *others, *emoji("🥱")]) == ["❤", "🥱"]


def test_a_change_says_the_newest_mapped_reaction() -> None:
    assert change_of([], emoji("👍")) == Change(UP, True)
    assert change_of(emoji("👍"), emoji("👎")) == Change(DOWN, True)  # replaced
    assert change_of(emoji("👍"), []) == Change(None, False)  # removed
    # Several at once (Premium): the one just added decides, else the newest left.
    assert change_of(emoji("👍"), emoji("👍", "💩")) == Change(DOWN, True)
    assert change_of([], emoji("👍", "🎉", "💩")) == Change(DOWN, True)
    assert change_of(emoji("👍", "💩"), emoji("👍")) == Change(UP, False)
    # Other emoji coming and going say nothing, even next to a mapped one.
    assert change_of([], emoji("🎉")) is None
    assert change_of(emoji("👍"), emoji("👍", "🎉")) is None
    assert change_of(emoji("🔥", "🎉"), emoji("🔥")) is None


def test_anonymous_counts_are_tallied_by_the_mapping() -> None:
    counts = [
        ReactionCount(ReactionTypeEmoji("👍"), 3),
        ReactionCount(ReactionTypeEmoji("❤"), 2),
        ReactionCount(ReactionTypeEmoji("🤮"), 1),
        ReactionCount(ReactionTypeEmoji("🎉"), 7),
    ]
    assert tally(counts) == (5, 1)
    assert tally([]) == (0, 0)
