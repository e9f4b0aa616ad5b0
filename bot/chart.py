"""The leaderboard as a picture: duel strengths with intervals, and 👍 share per temperature.

Rendered by a bare matplotlib `Figure` (its default canvas is Agg: no display, no pyplot
state) into PNG bytes, so the bot can send it as a photo and the CLI can write it to disk.
matplotlib is imported on the first chart, not with the bot: it costs ~30 MB of memory that a
bot nobody asks for /leaderboard never needs.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from bot.ranking import ArmStrength


@dataclass(frozen=True)
class TemperatureVotes:
    """👍 and 👎 on ordinary samples made at one temperature."""

    temperature: float
    up: int
    down: int

    @property
    def up_share(self) -> float:
        """Share of votes that were 👍 (0 when there are none)."""
        total = self.up + self.down
        return self.up / total if total else 0.0


def leaderboard_png(board: Sequence[ArmStrength], votes: Sequence[TemperatureVotes], *, title: str) -> bytes:
    """Two panels: strength per arm (95% interval) and 👍 share per temperature; PNG bytes."""
    from matplotlib.figure import Figure

    # Figure() rather than pyplot: no global state, so concurrent renders cannot mix.
    figure = Figure(figsize=(9, 4.8), dpi=110, layout="constrained")
    strengths, thumbs = figure.subplots(1, 2, width_ratios=(3, 2))
    figure.suptitle(title)

    ordered = list(reversed(board))  # strongest at the top
    if ordered:
        ys = range(len(ordered))
        values = [row.strength for row in ordered]
        errors = [
            [row.strength - row.low for row in ordered],
            [row.high - row.strength for row in ordered],
        ]
        strengths.errorbar(values, ys, xerr=errors, fmt="o", color="#3465a4", ecolor="#729fcf", capsize=3)
        strengths.set_yticks(list(ys), [f"{row.arm}  ({row.duels})" for row in ordered])
        strengths.set_ylim(-0.7, len(ordered) - 0.3)
        strengths.axvline(0, color="#888a85", linewidth=0.8)
    else:
        strengths.text(0.5, 0.5, "no duel votes yet", ha="center", va="center", transform=strengths.transAxes)
        strengths.set_yticks([])
    strengths.set_xlabel("Bradley-Terry strength (log odds), 95% interval")
    strengths.set_title("Duels (votes per arm)")

    shown = [v for v in votes if v.up + v.down]
    if shown:
        labels = [f"{v.temperature:g}" for v in shown]
        bars = thumbs.bar(labels, [v.up_share for v in shown], color="#73d216")
        for bar, v in zip(bars, shown, strict=True):
            thumbs.annotate(
                f"{v.up + v.down}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
            )
        thumbs.set_ylim(0, 1.1)
    else:
        thumbs.text(0.5, 0.5, "no ratings yet", ha="center", va="center", transform=thumbs.transAxes)
    thumbs.set_xlabel("temperature")
    thumbs.set_ylabel("share of votes that liked it")
    thumbs.set_title("Ratings of single samples (votes)")

    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
