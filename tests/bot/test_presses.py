"""The press door: which presses may act where (bot/handlers/presses.py), and reveals that fit."""

from __future__ import annotations

from bot import keyboards as kb
from bot.handlers.presses import Origin, acceptable, carried
from bot.render import MESSAGE_LIMIT, fit_lines, utf16_len

GROUP, ALICE_PRIVATE = -1001, 42
ALICE, BOB = ALICE_PRIVATE, 43  # a private chat has its user's id
GAME_MESSAGE = Origin(GROUP, False, 7, None, True)


def test_a_game_vote_counts_only_from_the_games_own_message_in_its_chat() -> None:
    """Issue 24, item 1: `g:<id>:A` pressed in the presser's own private chat (on a message that
    carries it or not) or with no message at all voted in any group's open game."""
    vote = kb.GameVote(3, "A")
    assert acceptable(vote, GAME_MESSAGE, ALICE) and carried(GAME_MESSAGE, GROUP, 7)
    forged_private = Origin(ALICE_PRIVATE, True, 7, None, True)
    assert not carried(forged_private, GROUP, 7)  # the right message id, the wrong chat
    assert not carried(Origin(GROUP, False, 8, None, True), GROUP, 7)  # another message there
    no_message = Origin(None, False, None, "AgAAAInline", False, readable=False)
    assert not acceptable(vote, no_message, ALICE)  # used to fail an assertion: "temporarily unavailable"
    assert not acceptable(vote, Origin(ALICE_PRIVATE, True, 9, None, False), ALICE)  # data not on it
    assert not acceptable(kb.Rate(99, 1), Origin(ALICE_PRIVATE, True, 9, None, False), ALICE)  # forged


def test_nobody_presses_in_someone_elses_private_chat() -> None:
    """Newcomer pass, 2026-12-07: a duel or game vote pressed as Bob in Alice's private chat (a
    forged update: Telegram lets nobody else in) was counted; ratings there were refused by
    their own check. The door now refuses every such press, whatever it names."""
    duel, game = Origin(ALICE_PRIVATE, True, 70, None, True), Origin(ALICE_PRIVATE, True, 33, None, True)
    for action, origin in ((kb.DuelVote(1, "b"), duel), (kb.GameVote(1, "B"), game), (kb.Rate(5, 1), duel)):
        assert acceptable(action, origin, ALICE)
        assert not acceptable(action, origin, BOB)
    assert acceptable(kb.GameVote(1, "B"), GAME_MESSAGE, BOB)  # in a group, anyone there


def test_only_sample_presses_may_come_from_an_inline_message() -> None:
    inline = Origin(None, False, None, "AgAAAInline", False, readable=False)
    assert acceptable(kb.Rate(1, 1), inline, ALICE) and acceptable(kb.Again(1), inline, ALICE)
    for other in (kb.DuelVote(1, "a"), kb.SetTemperature(0.5), kb.Forget(True, 1), kb.NextToRate(1)):
        assert not acceptable(other, inline, ALICE)
    assert carried(inline, GROUP, 5, "AgAAAInline") and not carried(inline, GROUP, 5, "other")


def test_a_reveal_with_many_players_fits_one_message() -> None:
    """Issue 24, item 5: 90 voters with 17-character names made a 4,324-character reveal."""
    names = [f"player-{i:03d}-xxxxxxx" for i in range(300)]
    lines = [f"Right: {name}" for name in names] + [f"{i}. {n}: 3/4" for i, n in enumerate(names, 1)]
    body = fit_lines("<b>Real or dream?</b>", lines, "", "… and {count} more")
    assert utf16_len(body) <= MESSAGE_LIMIT
    assert body.startswith("<b>Real or dream?</b>\nRight: player-000") and body.endswith("more")
    assert fit_lines("head", ["a", "b"], "", "… {count}") == "head\na\nb"  # short: everything
