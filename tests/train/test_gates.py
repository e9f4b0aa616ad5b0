"""`lstmbot learn`'s gates: the measures (as served, reproducible) and the verdicts with their reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.bundle import load_bundle
from core.generator import Generator
from core.novelty import NoveltyIndex
from train.corpus import load_corpus
from train.data import split_corpus
from train.gates import Limits, Measures, Probe, distinct_share, draw, judge, measure
from train.recipes import TrainConfig


def test_distinct_share_sees_a_loop() -> None:
    assert distinct_share(list(range(20)), 8) == 1.0
    assert distinct_share([1, 2] * 20, 8) == pytest.approx(2 / 33)
    assert distinct_share([1, 2, 3], 8) == 1.0  # shorter than one n-gram: nothing repeated


def _measures(loss: float = 1.3, copy: float = 0.87, distinct: float = 0.92) -> Measures:
    return Measures(heldout_loss=loss, copy_rate=copy, flagged=1.0, longest_copied=22.0, distinct=distinct)


def test_judge_passes_a_close_challenger_and_names_what_fails() -> None:
    champion = _measures()
    close = judge(champion, _measures(1.32, 0.875, 0.9), Limits(), unit="char")
    assert [(g.name, g.passed, g.reason) for g in close] == [
        ("heldout_loss", True, ""),
        ("copy_rate", True, ""),
        ("repetition", True, ""),
    ]
    assert close[0].limit == pytest.approx(1.33) and close[2].limit == pytest.approx(0.828)
    worse = judge(champion, _measures(1.34, 0.9, 0.5), Limits(), unit="char")
    assert not any(g.passed for g in worse)
    assert worse[0].reason == "held-out loss +0.0400 nats/char over the champion's (at most +0.0300)"
    assert worse[1].reason.startswith("copies the book more: 90.0% of its 8-grams are the book's")
    assert worse[2].reason.startswith("repeats itself: 50.0% distinct n-grams in a sample")
    broken = judge(champion, _measures(float("nan")), Limits())
    assert not broken[0].passed  # a NaN loss never passes


def test_measures_are_reproducible_and_a_model_passes_against_itself(
    tiny_bundle: Path, tiny_text: str, tmp_path: Path
) -> None:
    corpus_file = tmp_path / "corpus.txt"
    corpus_file.write_text(tiny_text, encoding="utf-8")
    bundle = load_bundle(tiny_bundle)
    split = split_corpus(
        load_corpus(str(corpus_file)), TrainConfig(window=bundle.model.window), bundle.tokenizer
    )
    probe = Probe(samples=6, length=60, stride=9)
    ids = draw(Generator(bundle), ["supposing that ", "truth is "], probe)
    assert len(ids) == 6 and all(len(row) == 60 for row in ids)
    assert ids == draw(Generator(bundle), ["supposing that ", "truth is "], probe)  # fixed rng seeds
    index = NoveltyIndex(split.train)
    first = measure(bundle, split, index, ["supposing that "], probe)
    assert first == measure(bundle, split, index, ["supposing that "], probe)
    assert first.heldout_loss > 0 and 0 <= first.copy_rate <= 1 and 0 < first.distinct <= 1
    assert all(gate.passed for gate in judge(first, first, Limits()))
