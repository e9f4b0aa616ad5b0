"""Inline keyboards and their callback data: short, versioned strings parsed strictly.

Callback data is untrusted input (any client can send any bytes), so parsing accepts exactly
the shapes this module writes and returns None for everything else.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.parsing import format_temperature
from bot.texts import text
from core.limits import TEMPERATURE_PRESETS


@dataclass(frozen=True)
class Rate:
    """A thumbs up (+1) or down (-1) on a sample."""

    sample_id: int
    score: int


@dataclass(frozen=True)
class Again:
    """Same seed and settings, new sample."""

    sample_id: int


@dataclass(frozen=True)
class Share:
    """Make a sample public (True) or private again (False); only its author may."""

    sample_id: int
    shared: bool


@dataclass(frozen=True)
class NextToRate:
    """Show the next sample to rate, after the one on this message."""

    after_id: int


@dataclass(frozen=True)
class SetTemperature:
    """A temperature preset button."""

    value: float


@dataclass(frozen=True)
class SetModel:
    """Switch to a model."""

    name: str


@dataclass(frozen=True)
class Forget:
    """The /forget confirmation; only the user who asked (`telegram_id`) may answer it."""

    confirmed: bool
    telegram_id: int


DUEL_OUTCOME_CODES: dict[str, str] = {"a": "a", "b": "b", "t": "tie", "x": "bad"}  # code -> Outcome value


@dataclass(frozen=True)
class DuelVote:
    """A verdict on a duel: "a", "b", "tie" or "bad" (the stored Outcome's values)."""

    duel_id: int
    outcome: str


@dataclass(frozen=True)
class StartDuel:
    """🆚 under a sample: a duel on that sample's seed."""

    sample_id: int


@dataclass(frozen=True)
class GameVote:
    """ "A is real" / "B is real" in a game of "Real or dream?"."""

    game_id: int
    choice: str  # "A" or "B"


Action = (
    Rate | Again | Share | NextToRate | SetTemperature | SetModel | Forget | DuelVote | StartDuel | GameVote
)
# Presses that name a stored sample: the only kinds an inline message (no chat) may carry.
NAMES_SAMPLE = (Rate, Again, Share, StartDuel)

_PARSERS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], Action]]] = [
    (re.compile(r"r:(\d{1,18}):([+-])"), lambda m: Rate(int(m[1]), 1 if m[2] == "+" else -1)),
    (re.compile(r"a:(\d{1,18})"), lambda m: Again(int(m[1]))),
    (re.compile(r"s:(\d{1,18}):([01])"), lambda m: Share(int(m[1]), m[2] == "1")),
    (re.compile(r"n:(\d{1,18})"), lambda m: NextToRate(int(m[1]))),
    (re.compile(r"t:(0|0\.2|0\.5|1|1\.2)"), lambda m: SetTemperature(float(m[1]))),
    (re.compile(r"m:([A-Za-z0-9._-]{1,60})"), lambda m: SetModel(m[1])),
    (re.compile(r"f:([yn]):(\d{1,18})"), lambda m: Forget(m[1] == "y", int(m[2]))),
    (re.compile(r"d:(\d{1,18}):([abtx])"), lambda m: DuelVote(int(m[1]), DUEL_OUTCOME_CODES[m[2]])),
    (re.compile(r"vs:(\d{1,18})"), lambda m: StartDuel(int(m[1]))),
    (re.compile(r"g:(\d{1,18}):([AB])"), lambda m: GameVote(int(m[1]), m[2])),
]


def parse(data: str | None) -> Action | None:
    """The action a button's callback data stands for, or None if it is not exactly one of
    ours (callback data is untrusted: any client can send any bytes)."""
    if not data or len(data) > 64:
        return None
    for pattern, make in _PARSERS:
        if match := pattern.fullmatch(data):
            return make(match)
    return None


def share_button(sample_id: int, shared: bool, lang: str) -> InlineKeyboardButton:
    """ "🌐 Share" on a private sample, "🔒 Unshare" on a shared one."""
    if shared:
        return InlineKeyboardButton(text(lang, "unshare"), callback_data=f"s:{sample_id}:0")
    return InlineKeyboardButton(text(lang, "share"), callback_data=f"s:{sample_id}:1")


def rating_keyboard(
    sample_id: int,
    up: int,
    down: int,
    lang: str,
    *,
    with_next: bool = False,
    shared: bool | None = None,
    duel: bool = True,
) -> InlineKeyboardMarkup:
    """👍 count and 👎 count; below them again, and share/unshare and 🆚 (a duel on the same
    seed; not where `duel` is False: an acrostic's forced form would decide a duel by itself)
    under the sample itself (`shared` given); next, in a rating session. Two rows, so the
    labels fit a phone's width."""
    actions = [InlineKeyboardButton(text(lang, "again"), callback_data=f"a:{sample_id}")]
    if shared is not None:
        actions.append(share_button(sample_id, shared, lang))
        if duel:
            actions.append(InlineKeyboardButton(text(lang, "vs"), callback_data=f"vs:{sample_id}"))
    rows = [
        [
            InlineKeyboardButton(f"👍 {up}", callback_data=f"r:{sample_id}:+"),
            InlineKeyboardButton(f"👎 {down}", callback_data=f"r:{sample_id}:-"),
        ],
        actions,
    ]
    if with_next:
        rows.append([InlineKeyboardButton(text(lang, "next"), callback_data=f"n:{sample_id}")])
    return InlineKeyboardMarkup(rows)


def compare_keyboard(parts: list[tuple[float, int, int, int]]) -> InlineKeyboardMarkup:
    """/compare's buttons: per (temperature, sample id, 👍, 👎) part, its two counts."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(f"T={format_temperature(t)} 👍 {up}", callback_data=f"r:{sample_id}:+"),
                InlineKeyboardButton(
                    f"T={format_temperature(t)} 👎 {down}", callback_data=f"r:{sample_id}:-"
                ),
            ]
            for t, sample_id, up, down in parts
        ]
    )


def temperature_keyboard(current: float) -> InlineKeyboardMarkup:
    """The four presets from the book, the current one marked."""
    buttons = [
        InlineKeyboardButton(
            ("✓ " if abs(value - current) < 1e-9 else "") + format_temperature(value),
            callback_data=f"t:{format_temperature(value)}",
        )
        for value in TEMPERATURE_PRESETS
    ]
    return InlineKeyboardMarkup([buttons])


def model_keyboard(names: list[str], current: str) -> InlineKeyboardMarkup:
    """One button per loaded model."""
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(("✓ " if name == current else "") + name, callback_data=f"m:{name}")]
            for name in names
        ]
    )


def forget_keyboard(lang: str, telegram_id: int) -> InlineKeyboardMarkup:
    """Yes / no for /forget, bound to the user who asked."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(text(lang, "forget_yes"), callback_data=f"f:y:{telegram_id}"),
                InlineKeyboardButton(text(lang, "forget_no"), callback_data=f"f:n:{telegram_id}"),
            ]
        ]
    )


_COUNT = re.compile(r"\d+$")


def with_votes(markup: InlineKeyboardMarkup, sample_id: int, up: int, down: int) -> InlineKeyboardMarkup:
    """The same keyboard with the counts on this sample's 👍/👎 buttons replaced."""
    counts = {f"r:{sample_id}:+": up, f"r:{sample_id}:-": down}
    rows = []
    for row in markup.inline_keyboard:
        new_row = []
        for button in row:
            if isinstance(button.callback_data, str) and button.callback_data in counts:
                label = _COUNT.sub(str(counts[button.callback_data]), button.text)
                button = InlineKeyboardButton(label, callback_data=button.callback_data)
            new_row.append(button)
        rows.append(new_row)
    return InlineKeyboardMarkup(rows)


def with_share(markup: InlineKeyboardMarkup, sample_id: int, shared: bool, lang: str) -> InlineKeyboardMarkup:
    """The same keyboard with this sample's share button showing its new state."""
    ours = {f"s:{sample_id}:0", f"s:{sample_id}:1"}
    return InlineKeyboardMarkup(
        [
            [
                share_button(sample_id, shared, lang) if button.callback_data in ours else button
                for button in row
            ]
            for row in markup.inline_keyboard
        ]
    )


def has_button(markup: InlineKeyboardMarkup | None, data: str) -> bool:
    """Whether a keyboard carries a button with exactly this callback data."""
    if markup is None:
        return False
    return any(button.callback_data == data for row in markup.inline_keyboard for button in row)


# -- "Real or dream?" --------------------------------------------------------------------------


def game_keyboard(game_id: int, lang: str) -> InlineKeyboardMarkup:
    """The two vote buttons of a game: "A is real" and "B is real"."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(text(lang, "game_vote_a"), callback_data=f"g:{game_id}:A"),
                InlineKeyboardButton(text(lang, "game_vote_b"), callback_data=f"g:{game_id}:B"),
            ]
        ]
    )


# -- duels -------------------------------------------------------------------------------------


def duel_keyboard(duel_id: int, lang: str) -> InlineKeyboardMarkup:
    """A is better / B is better, then Tie / Both bad."""

    def button(key: str, code: str) -> InlineKeyboardButton:
        return InlineKeyboardButton(text(lang, key), callback_data=f"d:{duel_id}:{code}")

    return InlineKeyboardMarkup(
        [[button("duel_a", "a"), button("duel_b", "b")], [button("duel_tie", "t"), button("duel_bad", "x")]]
    )
