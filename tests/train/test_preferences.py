"""Fine-tuning from ratings: reading KTO/DPO exports, mixing them into the corpus, a tuned bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.bundle import load_bundle
from core.tokenizers import CharTokenizer
from train.preferences import (
    DISLIKE,
    DISLIKE_FLOOR,
    IGNORE,
    LIKE,
    PreferencesError,
    load_preferred_texts,
    mix_into_training,
    mix_with_kinds,
)


def write_rows(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


def test_kto_keeps_liked_completions_and_dpo_the_chosen_side(tmp_path: Path) -> None:
    kto = write_rows(
        tmp_path / "kto.jsonl",
        [
            {"prompt": "the will ", "completion": "to power", "label": True, "temperature": 0.5},
            {"prompt": "the will ", "completion": "xqzv", "label": False},
        ],
    )
    read = load_preferred_texts(kto)
    assert read.texts == ["the will to power"] and read.rows == 2 and len(read.sha256) == 64
    dpo = write_rows(
        tmp_path / "dpo.jsonl", [{"prompt": "truth is ", "chosen": "a woman", "rejected": "eee"}]
    )
    assert load_preferred_texts(dpo).texts == ["truth is a woman"]


def test_the_disliked_side_is_kept_apart_from_the_liked(tmp_path: Path) -> None:
    kto = write_rows(
        tmp_path / "kto.jsonl",
        [
            {"prompt": "the will ", "completion": "to power", "label": True},
            {"prompt": "the will ", "completion": "xqzv", "label": False},
            {"prompt": "the will ", "completion": "  ", "label": False},  # nothing to push down
        ],
    )
    assert load_preferred_texts(kto).disliked == (("the will ", "xqzv"),)
    dpo = write_rows(
        tmp_path / "dpo.jsonl", [{"prompt": "truth is ", "chosen": "a woman", "rejected": "eee"}]
    )
    assert load_preferred_texts(dpo).disliked == (("truth is ", "eee"),)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"prompt": "a", "completion": "b", "label": true}\nnot json\n', r"bad\.jsonl:2: not JSON"),
        ('{"prompt": "a", "completion": "b", "label": false}\n', "no liked completion or chosen"),
        ('{"prompt": "a", "text": "b"}\n', "neither a KTO row"),
        ('{"prompt": 1, "chosen": "b"}\n', "text 'prompt'"),
        ('{"prompt": "a", "completion": "b", "label": "yes"}\n', "true or false"),
    ],
)
def test_bad_preference_files_get_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PreferencesError, match=message):
        load_preferred_texts(path)


def test_mixing_keeps_the_corpus_in_order_and_reaches_the_share(tiny_text: str) -> None:
    tokenizer = CharTokenizer.fit(tiny_text + "\n~")
    corpus = np.asarray(tokenizer.encode(tiny_text), dtype=np.int32)
    liked = "~~ a liked one ~~"
    mixed = mix_into_training(corpus, [liked], tokenizer, share=0.3)
    text = tokenizer.decode(mixed.tolist())
    pieces = text.count(liked)
    assert pieces >= 2
    preferred_tokens = pieces * len(tokenizer.encode("\n\n" + liked))
    assert preferred_tokens / len(mixed) == pytest.approx(0.3, abs=0.03)
    # Taking the inserted pieces out gives back the corpus, unchanged and in order.
    assert text.replace("\n\n" + liked, "") == tiny_text.lower()
    with pytest.raises(PreferencesError, match="between 0 and 1"):
        mix_into_training(corpus, [liked], tokenizer, share=1.0)


def test_a_minimum_temperature_keeps_only_hot_kto_rows(tmp_path: Path) -> None:
    kto = write_rows(
        tmp_path / "kto.jsonl",
        [
            {"prompt": "a ", "completion": "cold liked", "label": True, "temperature": 0.5},
            {"prompt": "a ", "completion": "hot liked", "label": True, "temperature": 1.0},
            {"prompt": "a ", "completion": "unknown liked", "label": True},
            {"prompt": "a ", "completion": "cold bad", "label": False, "temperature": 0.2},
            {"prompt": "a ", "completion": "hot bad", "label": False, "temperature": 1.2},
        ],
    )
    read = load_preferred_texts(kto, min_temperature=1.0)
    assert read.texts == ["a hot liked", "a unknown liked"] and read.rows == 5
    assert read.disliked == (("a ", "hot bad"),)
    assert len(load_preferred_texts(kto).texts) == 3
    # Rows that do not say how they were made are kept.
    assert load_preferred_texts(kto, min_temperature=1.5).texts == ["a unknown liked"]


def test_disliked_completions_are_marked_and_their_prompts_ignored(tiny_text: str) -> None:
    tokenizer = CharTokenizer.fit(tiny_text + "\n~#")
    corpus = np.asarray(tokenizer.encode(tiny_text), dtype=np.int32)
    liked, prompt, bad = "~~ a liked one ~~", "## prompt ", "#bad#"
    ids, kinds = mix_with_kinds(corpus, [liked], ((prompt, bad),), tokenizer, share=0.3)
    assert len(ids) == len(kinds)
    text = tokenizer.decode(ids.tolist())
    # The liked texts take the share of the book as without disliked ones; the disliked
    # pairs about as many tokens as the liked texts.
    liked_tokens = text.count(liked) * len(tokenizer.encode("\n\n" + liked))
    disliked_tokens = text.count(bad) * len(tokenizer.encode("\n\n" + prompt + bad))
    assert text.count(liked) >= 2 and disliked_tokens == pytest.approx(liked_tokens, rel=0.1)
    assert liked_tokens / (len(ids) - disliked_tokens) == pytest.approx(0.3, abs=0.03)
    # Exactly the disliked completions' characters are DISLIKE; their prompts are IGNORE.
    marked = "".join(ch if k == DISLIKE else "" for ch, k in zip(text, kinds.tolist(), strict=True))
    assert marked == bad * text.count(bad)
    ignored = "".join(ch if k == IGNORE else "" for ch, k in zip(text, kinds.tolist(), strict=True))
    assert ignored == ("\n\n" + prompt) * text.count(bad)
    rest = "".join(ch for ch, k in zip(text, kinds.tolist(), strict=True) if k == LIKE)
    assert rest.replace("\n\n" + liked, "") == tiny_text.lower()
    # Without disliked pairs it is the plain mix.
    plain, plain_kinds = mix_with_kinds(corpus, [liked], (), tokenizer, share=0.3)
    assert np.array_equal(plain, mix_into_training(corpus, [liked], tokenizer, share=0.3))
    assert not plain_kinds.any()


def test_the_preference_loss_per_kind() -> None:
    import keras

    from train.losses import PreferenceLoss

    vocab = 4
    probs = np.array([[[0.1, 0.2, 0.3, 0.4], [0.5, 0.25, 0.24, 0.01], [0.7, 0.1, 0.1, 0.1]]], np.float32)
    tokens = np.array([[3, 1, 0]])
    plain = keras.losses.SparseCategoricalCrossentropy(reduction=None)(tokens, probs)
    loss = PreferenceLoss(vocab, dislike_weight=0.5, reduction=None)
    # All LIKE: the ordinary cross-entropy.
    assert np.allclose(loss(tokens, probs), plain, atol=1e-6)
    # DISLIKE: weight * log p, floored at log(DISLIKE_FLOOR); IGNORE: nothing.
    labels = tokens + vocab * np.array([[DISLIKE, DISLIKE, IGNORE]])
    got = np.asarray(loss(labels, probs))
    assert got[0, 0] == pytest.approx(0.5 * np.log(0.4), abs=1e-6)
    assert got[0, 1] == pytest.approx(0.5 * np.log(0.25), abs=1e-6)
    floored = np.asarray(loss(np.array([[3 + vocab * DISLIKE]]), probs[:, 1:2]))
    assert floored[0, 0] == pytest.approx(0.5 * np.log(DISLIKE_FLOOR), abs=1e-6)
    assert got[0, 2] == 0.0
    restored = PreferenceLoss.from_config(loss.get_config())
    assert (restored.vocab_size, restored.dislike_weight) == (vocab, 0.5)


@pytest.mark.slow
def test_a_disliked_text_becomes_less_likely(tmp_path: Path, tiny_text: str) -> None:
    from core.generator import Generator
    from tests.train.test_loop import TINY as tiny
    from train.loop import train
    from train.run import TrainRun

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(tiny_text, encoding="utf-8")
    train(TrainRun(corpus, tmp_path / "base", tiny, verbose=0))
    prompt, bad = "supposing that ", "truth is a wo"
    prefs = write_rows(
        tmp_path / "prefs.jsonl",
        [
            {"prompt": prompt, "completion": "the will", "label": True},
            {"prompt": prompt, "completion": bad, "label": False},
        ],
    )
    fast = tiny.with_overrides(learning_rate=2e-2, steps_per_epoch=8)
    for name, weight in (("liked-only", 0.0), ("both", 1.0)):
        train(TrainRun(
            corpus, tmp_path / name, fast, init_from=tmp_path / "base", preferences=prefs,
            preference_loss="sft", dislike_weight=weight, verbose=0,
        ))  # fmt: skip

    def log_p(model: str) -> float:
        gen = Generator(load_bundle(tmp_path / model), precision="float32")
        text = prompt + bad
        return sum(
            float(np.log(gen.next_token_probs(text[:i])[gen.tokenizer.encode(text[i])[0]]))
            for i in range(len(prompt), len(text))
        )

    assert log_p("both") < log_p("liked-only")
    recorded = load_bundle(tmp_path / "both").meta["preferences"]
    assert recorded["disliked_texts"] == 1 and recorded["dislike_weight"] == 1.0
    assert load_bundle(tmp_path / "liked-only").meta["preferences"]["disliked_texts"] == 0


@pytest.mark.slow
def test_fine_tuning_on_preferences_writes_a_bundle_that_says_so(tmp_path: Path, tiny_text: str) -> None:
    from tests.train.test_loop import TINY as tiny
    from train.loop import train
    from train.run import TrainRun

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(tiny_text, encoding="utf-8")
    train(TrainRun(corpus, tmp_path / "base", tiny, verbose=0))
    prefs = write_rows(
        tmp_path / "prefs.jsonl",
        [{"prompt": "supposing that ", "chosen": "truth is a woman", "rejected": "aaaa"}] * 3,
    )
    train(TrainRun(
        corpus, tmp_path / "tuned", tiny, init_from=tmp_path / "base", preferences=prefs,
        preference_loss="sft", verbose=0,
    ))  # fmt: skip
    tuned = load_bundle(tmp_path / "tuned")
    base = load_bundle(tmp_path / "base")
    recorded = tuned.meta["preferences"]
    assert recorded["rows"] == 3 and recorded["preferred_texts"] == 3 and recorded["share"] == 0.3
    assert recorded["loss"] == "sft"
    assert recorded["base"] == f"{base.name}@{base.version}"
    assert tuned.meta["metrics"]["heldout"]["nats_per_token"] > 0
    assert tuned.tokenizer.tokens == base.tokenizer.tokens
