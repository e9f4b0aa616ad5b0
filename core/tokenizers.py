"""Tokenizers: text <-> integer ids, character level (English) or word level (Chinese, jieba's words).

Both kinds share one interface and one JSON format. Id 0 is always the unknown token, so a seed
with characters or words the model never saw still encodes: they map to 0 and the caller can ask
how many there were.
"""

from __future__ import annotations

import json
import re
import unicodedata
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

UNKNOWN_ID = 0
UNKNOWN_TOKEN = "\ufffd"  # the replacement character: what an unknown token decodes to


@dataclass(frozen=True)
class Encoded:
    """Token ids for a text and how many of its tokens were unknown to the vocabulary."""

    ids: list[int]
    unknown: int


class Tokenizer(ABC):
    """Maps text to ids and back; id 0 is the unknown token."""

    kind: ClassVar[str]

    def __init__(self, tokens: Sequence[str]) -> None:
        if not tokens or tokens[0] != UNKNOWN_TOKEN:
            raise ValueError("the vocabulary must start with the unknown token")
        if len(set(tokens)) != len(tokens):
            raise ValueError("the vocabulary has duplicate tokens")
        self.tokens: tuple[str, ...] = tuple(tokens)
        self._index = {token: i for i, token in enumerate(self.tokens)}

    @property
    def vocab_size(self) -> int:
        """Number of ids, the unknown token included."""
        return len(self.tokens)

    @abstractmethod
    def split(self, text: str) -> list[str]:
        """Cut normalised text into tokens (characters or words)."""

    def normalize(self, text: str) -> str:
        """Prepare text before splitting (identity unless a subclass says otherwise)."""
        return text

    def encode_counted(self, text: str) -> Encoded:
        """Encode text, counting tokens that were not in the vocabulary."""
        ids = [self._index.get(token, UNKNOWN_ID) for token in self.split(self.normalize(text))]
        return Encoded(ids=ids, unknown=ids.count(UNKNOWN_ID))

    def encode(self, text: str) -> list[int]:
        """Encode text to ids; unknown tokens become 0."""
        return self.encode_counted(text).ids

    def decode(self, ids: Iterable[int]) -> str:
        """Join the tokens for ids back into text."""
        return "".join(self.tokens[i] for i in ids)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready description of this tokenizer."""
        return {"kind": self.kind, "tokens": list(self.tokens), **self._options()}

    def _options(self) -> dict[str, Any]:
        return {}

    def save(self, path: Path) -> None:
        """Write the vocabulary and options as JSON."""
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=0), encoding="utf-8")

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Tokenizer:
        """Rebuild a tokenizer from `to_dict` output."""
        kind = data.get("kind")
        tokens = data.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ValueError("'tokens' must be a list of strings")
        if kind == CharTokenizer.kind:
            return CharTokenizer(tokens, lowercase=bool(data.get("lowercase", True)))
        if kind == WordTokenizer.kind:
            return WordTokenizer(tokens)
        raise ValueError(f"unknown tokenizer kind {kind!r}")

    @staticmethod
    def load(path: Path) -> Tokenizer:
        """Read a tokenizer saved with `save`."""
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("the vocabulary file must hold a JSON object")
        return Tokenizer.from_dict(data)


class CharTokenizer(Tokenizer):
    """One token per character, lower-cased by default as in the book."""

    kind = "char"

    def __init__(self, tokens: Sequence[str], *, lowercase: bool = True) -> None:
        super().__init__(tokens)
        self.lowercase = lowercase

    @classmethod
    def fit(cls, text: str, *, lowercase: bool = True, max_vocab: int | None = None) -> CharTokenizer:
        """Build the vocabulary from the distinct characters of a corpus, in code point order.

        `max_vocab` (unknown token included) keeps only the most frequent characters (ties by
        code point): a Chinese corpus has thousands, and one seen once or twice cannot be learned
        but costs a row of the output layer on every step. The rest encode as the unknown token.
        """
        if lowercase:
            text = text.lower()
        counts = Counter(text)
        counts.pop(UNKNOWN_TOKEN, None)
        if max_vocab is not None:
            if max_vocab < 2:
                raise ValueError("max_vocab must be at least 2")
            if len(counts) > max_vocab - 1:
                ranked = sorted(counts, key=lambda ch: (-counts[ch], ch))
                counts = Counter({ch: counts[ch] for ch in ranked[: max_vocab - 1]})
        return cls([UNKNOWN_TOKEN, *sorted(counts)], lowercase=lowercase)

    def normalize(self, text: str) -> str:
        return text.lower() if self.lowercase else text

    def split(self, text: str) -> list[str]:
        return list(text)

    def _options(self) -> dict[str, Any]:
        return {"lowercase": self.lowercase}


# Runs of whitespace other than newlines collapse to one space; newlines stay paragraph marks.
_SPACES = re.compile(r"[^\S\n]+")


def _is_punctuation(token: str) -> bool:
    return all(unicodedata.category(ch).startswith("P") for ch in token)


class WordTokenizer(Tokenizer):
    """Words segmented as jieba does (by jieba-rs); punctuation, spaces and newlines are tokens
    of their own."""

    kind = "word"

    def normalize(self, text: str) -> str:
        return _SPACES.sub(" ", text)

    def split(self, text: str) -> list[str]:
        # jieba-rs (rjieba): jieba 0.42.1's words with its HMM, token for token (checked on the
        # whole Hongloumeng corpus, 600,067 tokens; tests/core/test_segmenter.py keeps checking),
        # its dictionary built in ~0.3 s and ~40 MB where jieba's took ~1 s and ~80 MB, and a
        # book cut ~20x faster. Imported lazily: char models never need it.
        import rjieba

        tokens: list[str] = []
        for token in rjieba.cut(text, hmm=True):
            # jieba glues runs of punctuation ("。」"); split them so each mark is its own token.
            if len(token) > 1 and _is_punctuation(token):
                tokens.extend(token)
            else:
                tokens.append(token)
        return tokens

    def encode_counted(self, text: str) -> Encoded:
        """Encode words; a word outside the vocabulary falls back to its characters.

        Only characters that are themselves unknown become the unknown token, so rare names
        and words still reach the model as something it has seen.
        """
        ids: list[int] = []
        for token in self.split(self.normalize(text)):
            found = self._index.get(token)
            if found is not None:
                ids.append(found)
            else:
                ids.extend(self._index.get(ch, UNKNOWN_ID) for ch in token)
        return Encoded(ids=ids, unknown=ids.count(UNKNOWN_ID))

    @classmethod
    def fit(cls, text: str, *, max_vocab: int = 20000, min_count: int = 1) -> WordTokenizer:
        """Keep the `max_vocab - 1` most frequent units (plus unknown); ties break by first use.

        Words that do not make the cut are counted as their characters (that is how they will
        be encoded), so common characters earn their place beside common words.
        """
        if max_vocab < 2:
            raise ValueError("max_vocab must be at least 2")
        probe = cls([UNKNOWN_TOKEN])
        counts = Counter(probe.split(probe.normalize(text)))
        counts.pop(UNKNOWN_TOKEN, None)
        first = {tok for tok, _ in counts.most_common(max_vocab - 1)}
        merged = Counter({tok: n for tok, n in counts.items() if tok in first or len(tok) == 1})
        for tok, n in counts.items():
            if tok not in first and len(tok) > 1:
                for ch in tok:
                    merged[ch] += n
        merged.pop(UNKNOWN_TOKEN, None)
        kept = [tok for tok, n in merged.most_common(max_vocab - 1) if n >= min_count]
        return cls([UNKNOWN_TOKEN, *kept])


def tokenizer_for_level(level: str) -> type[CharTokenizer] | type[WordTokenizer]:
    """The tokenizer class for a training level name ("char" or "word")."""
    if level == "char":
        return CharTokenizer
    if level == "word":
        return WordTokenizer
    raise ValueError(f"level must be 'char' or 'word', not {level!r}")
