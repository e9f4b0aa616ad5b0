"""Fine-tuning from ratings: reading KTO/DPO exports, mixing them into the corpus, a tuned bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.bundle import load_bundle
from core.tokenizers import CharTokenizer
from train.preferences import PreferencesError, load_preferred_texts, mix_into_training


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


@pytest.mark.slow
def test_fine_tuning_on_preferences_writes_a_bundle_that_says_so(tmp_path: Path, tiny_text: str) -> None:
    from tests.train.test_loop import TINY as tiny
    from train.loop import train

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(tiny_text, encoding="utf-8")
    train(corpus, tmp_path / "base", tiny, verbose=0)
    prefs = write_rows(
        tmp_path / "prefs.jsonl",
        [{"prompt": "supposing that ", "chosen": "truth is a woman", "rejected": "aaaa"}] * 3,
    )
    train(corpus, tmp_path / "tuned", tiny, init_from=tmp_path / "base", preferences=prefs, verbose=0)
    tuned = load_bundle(tmp_path / "tuned")
    base = load_bundle(tmp_path / "base")
    recorded = tuned.meta["preferences"]
    assert recorded["rows"] == 3 and recorded["preferred_texts"] == 3 and recorded["share"] == 0.3
    assert recorded["base"] == f"{base.name}@{base.version}"
    assert tuned.meta["metrics"]["heldout"]["nats_per_token"] > 0
    assert tuned.tokenizer.tokens == base.tokenizer.tokens
