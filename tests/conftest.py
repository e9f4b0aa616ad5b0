"""Shared fixtures: tiny corpora, tokenizers and model bundles built on the spot (nothing downloaded)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# `lstmbot generate` keeps packed weights under $XDG_CACHE_HOME/lstmbot (cli/bundles.py): the
# tests' commands keep theirs out of the home folder.
os.environ["XDG_CACHE_HOME"] = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"lstmbot-tests-{os.getpid()}")


TINY_TEXT = (
    "Supposing that truth is a woman--what then? Is there not ground for suspecting that all "
    "philosophers, in so far as they have been dogmatists, have failed to understand women--that "
    "the terrible seriousness and clumsy importunity with which they have usually paid their "
    "addresses to truth, have been unskilled and unseemly methods for winning a woman? "
) * 12


@pytest.fixture(scope="session")
def tiny_text() -> str:
    """About 4,000 characters of the book's opening, repeated."""
    return TINY_TEXT


@pytest.fixture(scope="session")
def nietzsche_path() -> Path:
    """The book's corpus, shipped in the repository."""
    from train.corpus import shipped_corpus_path

    return shipped_corpus_path("nietzsche")


@pytest.fixture(scope="session")
def hongloumeng_path() -> Path:
    """The Chinese corpus, shipped in the repository."""
    from train.corpus import shipped_corpus_path

    return shipped_corpus_path("hongloumeng")


BundleFactory = Callable[..., Path]


@pytest.fixture(scope="session")
def make_bundle(tmp_path_factory: pytest.TempPathFactory, tiny_text: str) -> BundleFactory:
    """Build a Keras model with seeded random weights and save it as a bundle; returns its path."""
    from core.bundle import save_bundle
    from core.config import ModelConfig
    from core.keras_model import build_model, get_named_weights
    from core.tokenizers import CharTokenizer

    cache: dict[tuple[object, ...], Path] = {}

    def factory(
        *,
        input: str = "embedding",
        lstm_units: tuple[int, ...] = (32,),
        embedding_dim: int = 16,
        window: int = 20,
        scale: float = 0.25,
        seed: int = 0,
    ) -> Path:
        key = (input, lstm_units, embedding_dim, window, scale, seed)
        if key in cache:
            return cache[key]
        tokenizer = CharTokenizer.fit(tiny_text)
        config = ModelConfig(
            vocab_size=tokenizer.vocab_size,
            window=window,
            input=input,  # type: ignore[arg-type]
            embedding_dim=embedding_dim if input == "embedding" else 0,
            lstm_units=lstm_units,
        )
        model = build_model(config)
        rng = np.random.default_rng(seed)
        for weight in model.weights:
            weight.assign(rng.normal(0.0, scale, weight.shape).astype("float32"))
        path = tmp_path_factory.mktemp("bundle") / "tiny-char"
        save_bundle(
            path,
            model=config,
            tokenizer=tokenizer,
            weights=get_named_weights(model, config),
            meta={"language": "en"},
        )
        cache[key] = path
        return path

    return factory


@pytest.fixture(scope="session")
def tiny_bundle(make_bundle: BundleFactory) -> Path:
    """The default tiny character bundle."""
    return make_bundle()


TINY_CHINESE = (
    "宝玉笑道：“我送妹妹一方玉。”黛玉听了，便问道：“你从何处来？”宝钗笑着说：“我们到园子里去逛逛。”"
    "贾母听了，喜欢得了不得，忙叫人去请凤姐来。凤姐笑道：“老祖宗只管放心。”"
) * 20


@pytest.fixture(scope="session")
def word_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Chinese word-level bundle (jieba tokens, embedding input)."""
    from core.bundle import save_bundle
    from core.config import ModelConfig
    from core.keras_model import build_model, get_named_weights
    from core.tokenizers import WordTokenizer

    tokenizer = WordTokenizer.fit(TINY_CHINESE, max_vocab=200)
    config = ModelConfig(
        vocab_size=tokenizer.vocab_size, window=12, input="embedding", embedding_dim=8, lstm_units=(16,)
    )
    model = build_model(config)
    rng = np.random.default_rng(3)
    for weight in model.weights:
        weight.assign(rng.normal(0.0, 0.25, weight.shape).astype("float32"))
    path = tmp_path_factory.mktemp("bundle") / "tiny-zh"
    save_bundle(
        path,
        model=config,
        tokenizer=tokenizer,
        weights=get_named_weights(model, config),
        meta={"language": "zh", "seeds": ["宝玉笑道", "黛玉听了"]},
    )
    return path


def poem_text() -> str:
    """A slice of the Tang corpus: its first 300 poems and those with 快 (for "新年快乐")."""
    from train.corpus import load_corpus

    poems = load_corpus("tang").text.splitlines()
    return "".join(f"{poem}\n" for poem in poems[:300] + [p for p in poems[300:] if "快" in p])


@pytest.fixture(scope="session")
def poem_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A character bundle over a slice of the Tang corpus's vocabulary, random weights (no Keras:
    the weights are drawn straight into the shapes the config names)."""
    from core.book import TANG_SHA256
    from core.bundle import save_bundle
    from core.config import ModelConfig
    from core.tokenizers import CharTokenizer

    tokenizer = CharTokenizer.fit(poem_text())
    config = ModelConfig(
        vocab_size=tokenizer.vocab_size, window=24, input="embedding", embedding_dim=16, lstm_units=(32,)
    )
    rng = np.random.default_rng(27)
    weights = {
        name: rng.normal(0.0, 0.3, shape).astype(np.float32) for name, shape in config.weight_shapes().items()
    }
    path = tmp_path_factory.mktemp("bundle") / "tiny-tang"
    save_bundle(
        path,
        model=config,
        tokenizer=tokenizer,
        weights=weights,
        meta={"language": "zh", "corpus": {"name": "tang", "sha256": TANG_SHA256}},
    )
    return path


def wait_for_sandbox(proc: subprocess.Popen[str]) -> str:
    """Read a `lstmbot sandbox` process's output up to its "open http..." line, and return it."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    while "open http" not in line:
        assert line, "the sandbox exited before it was ready"
        line = proc.stdout.readline()
    return line
