"""Book: a shipped bundle's corpus found by sha256, split as training split it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.book import SHIPPED, Book, BookError
from core.bundle import load_bundle
from core.novelty import NoveltyIndex
from tests.conftest import BundleFactory

ROOT = Path(__file__).resolve().parent.parent.parent


def test_the_shipped_char_model_finds_its_book_split_like_training() -> None:
    bundle = load_bundle(ROOT / "models" / "nietzsche-char")
    book = Book.of(bundle)
    assert book.name == "nietzsche"
    # The counts training recorded in the bundle: the same cut, so the same two parts.
    assert len(book.training) == bundle.meta["corpus"]["train_tokens"]
    assert len(book.heldout) == bundle.meta["corpus"]["heldout_tokens"]
    index = NoveltyIndex(book.training)
    assert index.check(book.training[1000:1100]).longest_copied == 100


def test_the_shipped_word_model_finds_its_book_exactly() -> None:
    bundle = load_bundle(ROOT / "models" / "hongloumeng-word")
    book = Book.of(bundle)
    assert book.name == "hongloumeng" and book.exact
    assert len(book.training) == bundle.meta["corpus"]["train_tokens"]
    assert len(book.heldout) == bundle.meta["corpus"]["heldout_tokens"]


def test_a_bundle_trained_on_an_earlier_copy_gets_the_current_one_inexact(tmp_path: Path) -> None:
    # A bundle trained on an earlier copy of a shipped corpus (config.json is not checksummed).
    import json
    import shutil

    folder = shutil.copytree(ROOT / "models" / "hongloumeng-word", tmp_path / "old-hongloumeng")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["corpus"]["sha256"] = "5eca888fb54188d644df70fa555dd3c9cbdd3a8d7b3034fb59f7a81e16f05dc7"
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    bundle = load_bundle(folder)
    assert bundle.meta["corpus"]["sha256"] != SHIPPED["hongloumeng"]
    book = Book.of(bundle)
    assert book.name == "hongloumeng" and not book.exact
    total = len(book.training) / 0.9
    # The held-out part starts past a margin after the cut: clear of anything trained on.
    assert len(book.heldout) < 0.09 * total
    assert abs(len(book.training) - bundle.meta["corpus"]["train_tokens"]) < 0.02 * total


def test_a_bundle_of_an_unknown_corpus_has_no_book(make_bundle: BundleFactory) -> None:
    bundle = load_bundle(make_bundle(window=20))
    with pytest.raises(BookError, match="not shipped"):
        Book.of(bundle)


def test_corpora_dir_can_be_named_for_an_installed_copy(tmp_path: Path) -> None:
    # The Docker image installs the package without the repository around it.
    (tmp_path / "nietzsche.txt").write_text("a copy", encoding="utf-8")
    code = "from core.book import shipped_corpus_path; print(shipped_corpus_path('nietzsche'))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "CORPORA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == str(tmp_path / "nietzsche.txt")


def test_a_saved_book_loads_back_the_same(tmp_path: Path) -> None:
    book = Book.of(load_bundle(ROOT / "models" / "nietzsche-char"))
    book.save(tmp_path / "book.npz")
    again = Book.load(tmp_path / "book.npz")
    assert again.name == book.name and again.exact == book.exact
    assert (again.training == book.training).all() and (again.heldout == book.heldout).all()


def test_the_book_command_reports_a_bundle_without_a_book(make_bundle: BundleFactory, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "core.book", str(make_bundle(window=20)), str(tmp_path / "out.npz")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 2 and "not shipped" in done.stderr
    assert not (tmp_path / "out.npz").exists()
