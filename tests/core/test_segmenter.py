"""The word tokenizer's segmenter (jieba-rs, through rjieba) cuts as jieba 0.42.1 with its HMM
did when the shipped word model was trained: the same tokens, so the same ids. (On the whole
Hongloumeng corpus: 600,067 tokens, all equal, when it was adopted; here 40 stretches of it.)"""

from __future__ import annotations

from pathlib import Path

import jieba
import pytest
import rjieba

from core.tokenizers import UNKNOWN_TOKEN, WordTokenizer

ROOT = Path(__file__).resolve().parents[2]
BOOK = (ROOT / "corpora" / "hongloumeng.txt").read_text(encoding="utf-8")


def stretches(count: int, size: int) -> list[str]:
    """`count` stretches of about `size` characters spread over the book, each starting and
    ending at a line's end (neither segmenter looks across a newline)."""
    out = []
    for i in range(count):
        start = BOOK.find("\n", i * len(BOOK) // count) + 1
        end = BOOK.find("\n", start + size)
        out.append(BOOK[start : end if end > 0 else len(BOOK)])
    return out


@pytest.mark.parametrize("stretch", stretches(40, 2500), ids=lambda s: f"{len(s)} chars")
def test_rjieba_cuts_the_book_as_jieba_does(stretch: str) -> None:
    jieba.setLogLevel(60)
    assert rjieba.cut(stretch, hmm=True) == jieba.lcut(stretch, HMM=True)


def test_the_word_tokenizer_splits_punctuation_runs_and_keeps_the_words() -> None:
    probe = WordTokenizer([UNKNOWN_TOKEN])
    cut = ["宝玉", "笑", "道", "：", "“", "我们", "到", "园子", "里", "去", "。", "”"]
    assert probe.split("宝玉笑道：“我们到园子里去。”") == cut
    assert probe.split("“好！”。") == ["“", "好", "！", "”", "。"]  # jieba glued "！”。"
    assert probe.split("林黛玉") == jieba.lcut("林黛玉", HMM=True)
