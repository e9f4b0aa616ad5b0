"""What a duel vote says, as storage keeps it: the outcomes (the ``duel_votes.outcome`` CHECK)
and a counted vote between two arm labels, which bot.ranking fits strengths to."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """What a voter said about a duel between arm A and arm B."""

    A = "a"
    B = "b"
    TIE = "tie"
    BOTH_BAD = "bad"


@dataclass(frozen=True)
class Vote:
    """One counted duel vote."""

    arm_a: str
    arm_b: str
    outcome: Outcome
