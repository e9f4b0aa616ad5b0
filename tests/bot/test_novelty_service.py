"""The novelty service builds each model's book in the background; Chinese ones in a child process."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from bot.novelty import NoveltyService
from core.bundle import load_bundle

ROOT = Path(__file__).resolve().parent.parent.parent


def _book_children() -> list[int]:
    """Our child processes running `python -m core.book` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid == os.getpid() and b"core.book" in cmdline:
            found.append(int(entry.name))
    return found


async def test_the_chinese_book_is_built_in_a_child_and_split_like_training() -> None:
    bundle = load_bundle(ROOT / "models" / "hongloumeng-word")
    service = NoveltyService({"zh": bundle})
    service.start()
    await asyncio.sleep(0.3)
    assert _book_children(), "the book is tokenized in a child process, not in a thread of ours"
    await service.wait_ready()
    book = service.books["zh"]
    assert book.name == "hongloumeng" and book.exact
    assert len(book.training) == bundle.meta["corpus"]["train_tokens"]
    assert len(book.heldout) == bundle.meta["corpus"]["heldout_tokens"]
    sample = [int(i) for i in book.training[500:540]]
    novelty = service.check("zh", sample)
    assert novelty is not None and novelty.longest_copied == 40
    assert not _book_children()


async def test_closing_while_a_book_is_built_stops_its_child() -> None:
    service = NoveltyService({"zh": load_bundle(ROOT / "models" / "hongloumeng-word")})
    service.start()
    await asyncio.sleep(0.3)
    assert _book_children()
    await service.close()
    assert not _book_children()
    assert service.check("zh", [1, 2, 3]) is None


async def test_with_a_cache_only_the_first_start_tokenizes_the_chinese_book(tmp_path: Path) -> None:
    """The child writes the book's ids into the cache folder; the next start maps them: no child,
    no jieba run, the same book."""
    bundle = load_bundle(ROOT / "models" / "hongloumeng-word", weights="disk")
    first = NoveltyService({"zh": bundle}, tmp_path)
    first.start()
    await asyncio.sleep(0.3)
    assert _book_children()
    await first.wait_ready()
    assert len(list(tmp_path.glob("book-*.npy"))) == 1  # noqa: ASYNC240 - a test, nothing else waits
    again = NoveltyService({"zh": bundle}, tmp_path)
    again.start()
    await asyncio.sleep(0)
    assert not _book_children()
    await again.wait_ready()
    assert not _book_children()
    for part in ("training", "heldout"):
        assert (getattr(again.books["zh"], part) == getattr(first.books["zh"], part)).all()
    assert len(again.books["zh"].training) == bundle.meta["corpus"]["train_tokens"]
    sample = [int(i) for i in again.books["zh"].training[500:540]]
    assert again.check("zh", sample) == first.check("zh", sample)
