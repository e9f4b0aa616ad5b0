"""The leaderboard chart: a real PNG with both panels, also when nothing was voted yet."""

from __future__ import annotations

import io

import matplotlib.image
import numpy as np

from bot.chart import TemperatureVotes, leaderboard_png
from bot.ranking import ArmStrength


def decode(png: bytes) -> np.ndarray:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image: np.ndarray = matplotlib.image.imread(io.BytesIO(png), format="png")
    return image


def test_chart_draws_every_arm_and_temperature() -> None:
    board = [
        ArmStrength("nietzsche-char @0.5", 0.6, 0.3, 0.9, 40, 0.05),
        ArmStrength("nietzsche-char @1.2", -0.6, -0.9, -0.3, 40, 0.4),
    ]
    votes = [TemperatureVotes(0.5, 8, 2), TemperatureVotes(1.2, 1, 9), TemperatureVotes(0.2, 0, 0)]
    image = decode(leaderboard_png(board, votes, title="Which temperature writes best?"))
    height, width = image.shape[:2]
    assert (width, height) == (990, 528)
    # Something was drawn in both halves: not a blank white canvas.
    left, right = image[:, : width // 2, :3], image[:, width // 2 :, :3]
    assert (left < 0.9).mean() > 0.01 and (right < 0.9).mean() > 0.01
    # The liked-share bars are green: present only where votes exist.
    green = (image[:, :, 1] > 0.7) & (image[:, :, 0] < 0.6) & (image[:, :, 2] < 0.3)
    assert green[:, width // 2 :].sum() > 200


def test_empty_chart_still_renders() -> None:
    image = decode(leaderboard_png([], [], title="nothing yet"))
    assert image.shape[0] > 100
    green = (image[:, :, 1] > 0.7) & (image[:, :, 0] < 0.6) & (image[:, :, 2] < 0.3)
    assert green.sum() == 0
