"""The lesson read off ratings (train/lesson.py): the sharpness raters who like sharper text ask
for is found and worth a round; coin-flip ratings teach nothing; only the champion's own rated
samples count."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.bundle import load_bundle
from core.generator import Generator, Request
from train.lesson import Lesson, Rated, fit, inside_word, read_rated

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "the free spirit "


@pytest.fixture(scope="module")
def drawn() -> tuple[Generator, list[str], np.ndarray]:
    """160 samples of 120 characters from the shipped model at T=1.0, and how sharp each one
    is: its mean log-probability a character under the model."""
    generator = Generator(load_bundle(ROOT / "models" / "nietzsche-char"))
    samples = generator.generate([Request(PROMPT, length=120, temperature=1.0, rng=i) for i in range(160)])
    texts = [s.text for s in samples]
    rated = [Rated(PROMPT, text, True, 1.0) for text in texts]
    from train.lesson import log_probs

    sharpness = log_probs(generator, rated, [(1.0, 1.0)])[:, 0] / 120
    return generator, texts, sharpness


def test_raters_who_like_sharper_text_teach_a_sharper_champion(
    drawn: tuple[Generator, list[str], np.ndarray],
) -> None:
    generator, texts, sharpness = drawn
    liked = sharpness >= np.quantile(sharpness, 0.8)  # the sharpest fifth is liked
    lesson = fit(generator, [Rated(PROMPT, t, bool(k), 1.0) for t, k in zip(texts, liked, strict=True)])
    assert lesson.rated == 160 and lesson.like_rate == pytest.approx(0.2)
    assert (
        lesson.inside >= 1.0 and lesson.elsewhere >= 1.0 and (lesson.inside, lesson.elsewhere) != (1.0, 1.0)
    )
    assert lesson.worth_a_round and lesson.confidence >= 0.95 and lesson.gain >= 1.5
    assert lesson.effective >= 80  # the weights still stand for half the ratings at least

    # The same texts with the verdicts turned round ask for softer choices, not sharper.
    flipped = fit(generator, [Rated(PROMPT, t, not k, 1.0) for t, k in zip(texts, liked, strict=True)])
    assert flipped.inside <= 1.0 and flipped.elsewhere <= 1.0 and not flipped.worth_a_round


def test_coin_flips_teach_nothing(drawn: tuple[Generator, list[str], np.ndarray]) -> None:
    generator, texts, _ = drawn
    coins = np.random.default_rng(5).random(len(texts)) < 0.5
    lesson = fit(generator, [Rated(PROMPT, t, bool(c), 1.0) for t, c in zip(texts, coins, strict=True)])
    assert not lesson.worth_a_round


def test_one_verdict_or_none_teaches_nothing() -> None:
    generator = Generator(load_bundle(ROOT / "models" / "nietzsche-char"))
    assert fit(generator, []) == Lesson(1.0, 1.0, 0, 0.0, 0.0, 0.0, 0.0)
    everything_liked = fit(generator, [Rated(PROMPT, "and so on", True, 1.0)] * 3)
    assert (everything_liked.inside, everything_liked.elsewhere) == (1.0, 1.0)
    assert not everything_liked.worth_a_round


def test_only_the_champions_own_rated_samples_are_read(tmp_path: Path) -> None:
    rows = [
        {"prompt": "a ", "completion": "kept", "label": True, "temperature": 1.0, "model_version": "7"},
        {
            "prompt": "a ",
            "completion": "other version",
            "label": True,
            "temperature": 1.0,
            "model_version": "6",
        },
        {"prompt": "a ", "completion": "greedy", "label": False, "temperature": 0.0, "model_version": "7"},
        {"prompt": "a ", "completion": "", "label": False, "temperature": 0.5, "model_version": "7"},
        {"prompt": "a ", "chosen": "duel", "rejected": "vote", "chosen_model_version": "7"},
        {"prompt": "b ", "completion": "also kept", "label": False, "temperature": 0.5, "model_version": "7"},
    ]
    path = tmp_path / "preferences.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert read_rated(path, "7") == [Rated("a ", "kept", True, 1.0), Rated("b ", "also kept", False, 0.5)]


def test_letters_are_inside_words_for_a_char_model_only() -> None:
    bundle = load_bundle(ROOT / "models" / "nietzsche-char")
    inside = inside_word(bundle.tokenizer)
    tokens = bundle.tokenizer.tokens
    assert inside[tokens.index("e")] and not inside[tokens.index(" ")] and not inside[tokens.index(".")]
    assert not inside_word(load_bundle(ROOT / "models" / "hongloumeng-word").tokenizer).any()
