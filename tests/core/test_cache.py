"""Arrays kept between starts: built once, then mapped; a changed input is a new entry."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core import book as book_module
from core.book import Book
from core.bundle import load_bundle
from core.cache import cache_key, cached_array, entry_path
from core.generator import Generator, Request
from core.tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[2]


def test_an_entry_is_built_once_then_mapped_read_only(tmp_path: Path) -> None:
    built: list[int] = []

    def build() -> np.ndarray:
        built.append(1)
        return np.arange(10, dtype=np.int32)

    first = cached_array(tmp_path, "test", cache_key(x=1), build, dtype=np.int32, shape=(None,))
    again = cached_array(tmp_path, "test", cache_key(x=1), build, dtype=np.int32, shape=(None,))
    assert len(built) == 1 and isinstance(again, np.memmap) and not again.flags.writeable
    np.testing.assert_array_equal(first, again)
    cached_array(tmp_path, "test", cache_key(x=2), build, dtype=np.int32, shape=(None,))
    assert len(built) == 2 and len(list(tmp_path.glob("test-*.npy"))) == 2


def test_an_entry_of_the_wrong_shape_or_a_broken_file_is_rebuilt(tmp_path: Path) -> None:
    key = cache_key(x=3)
    path = entry_path(tmp_path, "test", key)
    path.write_bytes(b"not an npy file")
    table = cached_array(
        tmp_path, "test", key, lambda: np.ones((4, 8), np.float32), dtype=np.float32, shape=(4, 8)
    )
    assert table.shape == (4, 8) and np.load(path).shape == (4, 8)
    np.save(path, np.ones((4, 9), np.float32))
    table = cached_array(
        tmp_path, "test", key, lambda: np.zeros((4, 8), np.float32), dtype=np.float32, shape=(4, 8)
    )
    assert table.shape == (4, 8) and not table.any()


def test_an_unwritable_cache_folder_serves_from_memory(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the folder should be")
    array = cached_array(
        blocked, "test", cache_key(x=4), lambda: np.arange(3.0), dtype=np.float64, shape=(3,)
    )
    np.testing.assert_array_equal(array, [0.0, 1.0, 2.0])


@pytest.fixture
def char_bundle_and_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The shipped char bundle, recorded as trained on an earlier copy of its corpus (so the
    current copy stands in whatever it holds), and a corpus folder of our own."""
    bundle = shutil.copytree(ROOT / "models" / "nietzsche-char", tmp_path / "bundle")
    config = json.loads((bundle / "config.json").read_text(encoding="utf-8"))
    config["corpus"]["sha256"] = "0" * 64
    (bundle / "config.json").write_text(json.dumps(config), encoding="utf-8")
    corpora = tmp_path / "corpora"
    corpora.mkdir()
    shutil.copyfile(ROOT / "corpora" / "nietzsche.txt", corpora / "nietzsche.txt")
    monkeypatch.setattr(book_module, "CORPORA_DIR", corpora)
    return bundle, corpora


def test_book_ids_are_cached_and_tokenized_afresh_when_the_corpus_changes(
    char_bundle_and_corpus: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle_path, corpora = char_bundle_and_corpus
    bundle = load_bundle(bundle_path, weights="disk")
    cache = tmp_path / "cache"
    fresh = Book.of(bundle)
    assert not Book.is_cached(bundle, cache)
    first = Book.of(bundle, cache)
    assert Book.is_cached(bundle, cache) and len(list(cache.glob("book-*.npy"))) == 1
    np.testing.assert_array_equal(first.training, fresh.training)
    np.testing.assert_array_equal(first.heldout, fresh.heldout)

    def no_tokenizing(text: str) -> list[int]:
        raise AssertionError("a cached book must not be tokenized again")

    with monkeypatch.context() as patch:
        patch.setattr(bundle.tokenizer, "encode", no_tokenizing)
        mapped = Book.of(bundle, cache)
    assert isinstance(mapped.training, np.memmap)
    np.testing.assert_array_equal(mapped.training, fresh.training)

    # The corpus changes (its sha256 with it): the cached ids are not used, new ones are made.
    with (corpora / "nietzsche.txt").open("a", encoding="utf-8") as fh:
        fh.write("\nthe will to truth, once more. " * 200)
    assert not Book.is_cached(bundle, cache)
    changed = Book.of(bundle, cache)
    assert len(changed.training) + len(changed.heldout) > len(fresh.training) + len(fresh.heldout)
    assert len(list(cache.glob("book-*.npy"))) == 2
    np.testing.assert_array_equal(changed.training, Book.of(bundle).training)


def test_book_ids_are_keyed_by_the_vocabulary_too(
    char_bundle_and_corpus: tuple[Path, Path], tmp_path: Path
) -> None:
    bundle_path, _ = char_bundle_and_corpus
    bundle = load_bundle(bundle_path, weights="disk")
    cache = tmp_path / "cache"
    Book.of(bundle, cache)
    vocab = json.loads((bundle_path / "vocab.json").read_text(encoding="utf-8"))
    vocab["lowercase"] = not vocab.get("lowercase", True)
    other = dataclasses.replace(bundle, tokenizer=Tokenizer.from_dict(vocab))
    assert not Book.is_cached(other, cache)


def test_tokenizing_a_stretch_of_lines_at_a_time_gives_the_whole_texts_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundle = load_bundle(ROOT / "models" / "hongloumeng-word", weights="disk")
    text = (ROOT / "corpora" / "hongloumeng.txt").read_text(encoding="utf-8-sig")[:30000]
    text = text.replace("。", "。 \t \r\n", 40) + "\n\n  宝玉 笑道 \r\n"
    corpus = book_module._Corpus("hongloumeng", text.encode(), bundle.tokenizer, True, 0.1, "key")
    monkeypatch.setattr(book_module, "CHUNK_CHARS", 50)
    np.testing.assert_array_equal(corpus.encode(), np.asarray(bundle.tokenizer.encode(text), dtype=np.int32))


def test_the_word_models_token_table_is_mapped_and_generates_the_same(tmp_path: Path) -> None:
    bundle = load_bundle(ROOT / "models" / "hongloumeng-word", weights="disk")
    requests = [Request("宝玉", length=60, temperature=0.8, rng=r) for r in range(3)]
    in_memory = Generator(bundle)
    expected = [s.token_ids for s in in_memory.generate(requests)]
    for _ in range(2):  # built and stored, then mapped from the file
        mapped = Generator(bundle, cache_dir=tmp_path)
        table = mapped._layers[0].table
        assert not table.flags.writeable and table.shape == (8000, 1024)
        np.testing.assert_array_equal(table, in_memory._layers[0].table)
        assert [s.token_ids for s in mapped.generate(requests)] == expected
    assert len(list(tmp_path.glob("table0-*.npy"))) == 1
    # A server never steps more rows than the kernel takes: no float32 copy of any weight.
    assert "dense" not in mapped._layers[0].__dict__ and "_dense_f32" not in mapped.__dict__
