"""Acrostic poems: the exact form at every seed and temperature, on both generation paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.acrostic import (
    Acrostic,
    AcrosticError,
    acrostic_request,
    is_ideograph,
    lines,
    schedule,
    writes_poems,
)
from core.batching import RunningBatch
from core.bundle import load_bundle
from core.constraints import Schedule
from core.generator import Generator, Request


@pytest.fixture(scope="module")
def poet(poem_bundle: Path) -> Generator:
    return Generator(load_bundle(poem_bundle))


def assert_form(poem: str, acrostic: Acrostic) -> None:
    """Line i starts with head i, has `line_length` Chinese characters, then ，or 。 as the form says."""
    assert len(poem) == acrostic.length
    cut = lines(poem, acrostic)
    assert len(cut) == len(acrostic.heads)
    for i, (line, head) in enumerate(zip(cut, acrostic.heads, strict=True)):
        body, mark = line[:-1], line[-1]
        assert body[0] == head
        assert len(body) == acrostic.line_length and all(is_ideograph(ch) for ch in body), line
        assert mark == ("，" if i % 2 == 0 and i < len(cut) - 1 else "。")


HEADS = ["新年快乐", "春花秋月", "明月", "天", "山水风云", "一二三四五六七八"]
TEMPERATURES = [0.0, 0.2, 0.5, 1.0, 1.5, 2.0]


@pytest.mark.parametrize("line_length", [5, 7])
@pytest.mark.parametrize("heads", HEADS)
def test_every_poem_keeps_the_form(poet: Generator, heads: str, line_length: int) -> None:
    acrostic = Acrostic(heads, line_length)
    requests = [
        acrostic_request(poet.tokenizer, acrostic, temperature=t, rng=seed)
        for t in TEMPERATURES
        for seed in range(4)
    ]
    for sample in poet.generate(requests):
        assert_form(sample.text, acrostic)


def test_top_k_and_top_p_rows_keep_the_form_too(poet: Generator) -> None:
    acrostic = Acrostic("新年快乐", 7)
    requests = [
        acrostic_request(poet.tokenizer, acrostic, temperature=1.0, rng=seed, top_k=k, top_p=p)
        for seed in range(5)
        for k, p in [(1, None), (3, None), (None, 0.5), (50, 0.9)]
    ]
    for sample in poet.generate(requests):
        assert_form(sample.text, acrostic)


def test_an_odd_number_of_heads_ends_with_a_full_stop(poet: Generator) -> None:
    acrostic = Acrostic("春花秋", 5)
    poem = poet.generate_one(acrostic_request(poet.tokenizer, acrostic, rng=1)).text
    assert poem[5] == "，" and poem[11] == "。" and poem[-1] == "。"


def test_the_draws_are_the_models_not_fixed(poet: Generator) -> None:
    acrostic = Acrostic("新年快乐", 5)
    poems = {
        poet.generate_one(acrostic_request(poet.tokenizer, acrostic, temperature=1.0, rng=s)).text
        for s in range(8)
    }
    assert len(poems) > 1
    # Greedy is deterministic.
    greedy = [acrostic_request(poet.tokenizer, acrostic, temperature=0.0, rng=s) for s in range(3)]
    assert len({sample.text for sample in poet.generate(greedy)}) == 1


def test_running_batch_mixes_acrostics_with_free_rows_exactly(poet: Generator) -> None:
    """A constrained row batches with free ones, and neither changes the other's text."""
    acrostics = [Acrostic("新年快乐", 5), Acrostic("山水风云明月", 7)]
    jobs = [
        (0, acrostic_request(poet.tokenizer, acrostics[0], temperature=0.8, rng=11)),
        (1, Request("秦川雄帝宅，", length=30, temperature=0.8, rng=12)),
        (2, acrostic_request(poet.tokenizer, acrostics[1], temperature=1.2, rng=13)),
        (3, Request("\n", length=5, temperature=0.5, rng=14)),
    ]
    batch = RunningBatch(poet)
    batch.add_many(jobs[:2])
    done = dict(batch.step())
    batch.add_many(jobs[2:])  # joins a batch already under way
    while len(batch):
        done.update(batch.step())
    assert_form(done[0].text, acrostics[0])
    assert_form(done[2].text, acrostics[1])
    for tag, request in jobs:  # int rng seeds: each run starts the same stream afresh
        assert done[tag].text == poet.generate_one(request).text


def test_head_characters_the_model_lacks_are_refused(poet: Generator) -> None:
    with pytest.raises(AcrosticError, match="樂") as caught:
        acrostic_request(poet.tokenizer, Acrostic("新年快樂", 5))
    assert caught.value.missing == "樂"
    with pytest.raises(AcrosticError) as caught:
        schedule(poet.tokenizer, Acrostic("龘齉龘", 7))
    assert caught.value.missing == "龘齉"


@pytest.mark.parametrize(
    ("heads", "line_length", "message"),
    [
        ("新年快乐", 6, "5 or 7"),
        ("", 5, "1 to 8"),
        ("春" * 9, 5, "1 to 8"),
        ("新年, 快乐", 5, "Chinese characters"),
        ("abc", 7, "Chinese characters"),
        ("春。", 5, "Chinese characters"),
    ],
)
def test_bad_acrostics_are_refused(heads: str, line_length: int, message: str) -> None:
    with pytest.raises(AcrosticError, match=message):
        Acrostic(heads, line_length)


def test_models_that_do_not_write_verse_are_refused(tiny_bundle: Path, word_bundle: Path) -> None:
    english = load_bundle(tiny_bundle)
    with pytest.raises(AcrosticError, match="Chinese verse"):
        schedule(english.tokenizer, Acrostic("春", 5))
    words = load_bundle(word_bundle)
    with pytest.raises(AcrosticError, match="character-level"):
        schedule(words.tokenizer, Acrostic("宝玉", 5))
    assert not writes_poems(english) and not writes_poems(words)


def test_poem_bundles_are_recognised(poem_bundle: Path) -> None:
    assert writes_poems(load_bundle(poem_bundle))


def test_schedules_are_checked_against_the_request_and_the_vocabulary(
    poet: Generator, tiny_bundle: Path
) -> None:
    plan = schedule(poet.tokenizer, Acrostic("明月", 5))
    with pytest.raises(ValueError, match="covers 12 steps"):
        Request("\n", length=11, schedule=plan)
    # A schedule made for one vocabulary is refused by a model with another.
    english = Generator(load_bundle(tiny_bundle))
    with pytest.raises(ValueError, match="vocabulary"):
        english.generate_one(Request("the", length=12, schedule=plan))
    with pytest.raises(ValueError, match="at least one token"):
        Schedule((None,), (np.zeros(poet.tokenizer.vocab_size, dtype=np.bool_),))


def test_the_line_mask_is_ideographs_only(poet: Generator) -> None:
    plan = schedule(poet.tokenizer, Acrostic("明", 5))
    mask = plan.allowed[1]
    assert mask is not None
    allowed = {tok for tok, ok in zip(poet.tokenizer.tokens, mask, strict=True) if ok}
    assert "，" not in allowed and "。" not in allowed and "\n" not in allowed and "\ufffd" not in allowed
    assert allowed == {tok for tok in poet.tokenizer.tokens if len(tok) == 1 and is_ideograph(tok)}


def test_the_form_holds_against_a_model_that_prefers_punctuation(poem_bundle: Path) -> None:
    """Tilt the output layer towards ，。, the newline and the unknown token: left free, the model
    writes mostly those; constrained, every line is still characters only."""
    from dataclasses import replace

    bundle = load_bundle(poem_bundle)
    bias = np.array(bundle.weights["dense/bias"], copy=True)
    tokens = bundle.tokenizer.tokens
    for token in ("，", "。", "\n", "\ufffd"):
        bias[tokens.index(token)] += 8.0
    tilted = Generator(replace(bundle, weights={**bundle.weights, "dense/bias": bias}))
    free = tilted.generate_one(Request("\n", length=60, temperature=1.0, rng=0)).text
    assert sum(ch in "，。\n" for ch in free) > 30
    for line_length in (5, 7):
        acrostic = Acrostic("新年快乐春", line_length)
        requests = [
            acrostic_request(tilted.tokenizer, acrostic, temperature=t, rng=s)
            for t in TEMPERATURES
            for s in range(3)
        ]
        for sample in tilted.generate(requests):
            assert_form(sample.text, acrostic)
