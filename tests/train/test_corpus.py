"""Corpora: files, folders, the book's text by name, and the promised errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.book import SHAKESPEARE_SHA256
from train.corpus import (
    CORPORA_DIR,
    HONGLOUMENG_SHA256,
    NIETZSCHE_SHA256,
    SHIPPED,
    TANG_SHA256,
    CorpusError,
    load_corpus,
)
from train.data import split_corpus
from train.recipes import FAST


def test_text_file_and_folder(tmp_path: Path, tiny_text: str) -> None:
    (tmp_path / "a.txt").write_text("first part. ", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("second part.", encoding="utf-8")
    (tmp_path / "ignored.md").write_text("not text")
    folder = load_corpus(tmp_path)
    assert folder.text == "first part. \n\nsecond part."
    single = load_corpus(tmp_path / "a.txt")
    assert single.text == "first part. " and len(single.sha256) == 64
    assert single.language == "en"


def test_nietzsche_by_name_is_the_books_file(nietzsche_path: Path) -> None:
    corpus = load_corpus("nietzsche")
    assert corpus.sha256 == NIETZSCHE_SHA256
    assert len(corpus.text.lower()) == 600_893


def test_chinese_corpus_is_detected(hongloumeng_path: Path) -> None:
    assert load_corpus(hongloumeng_path).language == "zh"


def test_hongloumeng_by_name_is_the_clean_edition() -> None:
    corpus = load_corpus("hongloumeng")
    assert corpus.sha256 == HONGLOUMENG_SHA256
    assert len(corpus.text) == 866_212
    # The clean edition has none of the old copy's mojibake or markup.
    assert not any("\u0400" <= ch <= "\u04ff" for ch in corpus.text)
    assert "`" not in corpus.text


def test_shakespeare_by_name_is_tiny_shakespeare_with_case_and_line_breaks() -> None:
    corpus = load_corpus("shakespeare")
    assert corpus.sha256 == SHAKESPEARE_SHA256
    assert len(corpus.text) == 1_115_394 and len(set(corpus.text)) == 65
    # The play layout is the charm: speaker names in capitals, one verse line per line.
    assert corpus.text.startswith("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\n")
    assert corpus.language == "en"


def test_shakespeare_split_is_nanogpts() -> None:
    """nanoGPT's data/shakespeare_char/prepare.py: the first int(n * 0.9) characters train."""
    corpus = load_corpus("shakespeare")
    n = len(corpus.text)
    cut = int(n * 0.9)
    assert cut == 1_003_854
    split = split_corpus(corpus, FAST.with_overrides(lowercase=False))
    assert len(split.train) == cut and len(split.heldout) == n - cut
    # Every character of the held-out part is in the training part's vocabulary, case kept.
    assert split.tokenizer.decode(split.train.tolist()) == corpus.text[:cut]
    assert split.tokenizer.decode(split.heldout.tolist()) == corpus.text[cut:]
    assert split.heldout_chars == n - cut


def test_compressed_corpus_reads_like_plain(tmp_path: Path) -> None:
    import gzip

    (tmp_path / "book.txt.gz").write_bytes(gzip.compress(b"a compressed book."))
    assert load_corpus(tmp_path / "book.txt.gz").text == "a compressed book."


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"   \n\t\n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("caf\u00e9".encode("latin-1"), "not UTF-8"),
    ],
)
def test_bad_corpora_get_clear_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=message):
        load_corpus(path)


def test_missing_path_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no such file"):
        load_corpus(tmp_path / "nope.txt")
    with pytest.raises(CorpusError, match=r"no \.txt files"):
        load_corpus(tmp_path)


def test_tang_by_name_is_one_regular_poem_per_line() -> None:
    from train.tang_corpus import poem_form

    corpus = load_corpus("tang")
    assert corpus.sha256 == TANG_SHA256 and corpus.source.endswith("tang.txt.gz")
    poems = corpus.text.split("\n")
    assert poems[-1] == "" and len(poems) - 1 == 36_035
    assert all(poem_form(poem) is not None for poem in poems[:-1])
    assert poems[0].startswith("秦川雄帝宅，函谷壮皇居。绮殿千寻起，离宫百雉余。")
    assert corpus.language == "zh"


def test_the_corpora_readme_records_every_shipped_sha256() -> None:
    readme = (CORPORA_DIR / "README.md").read_text(encoding="utf-8")
    for name, digest in SHIPPED.items():
        assert name in readme and digest in readme, name
