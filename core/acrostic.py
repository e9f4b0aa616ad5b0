"""Acrostic poems (藏头诗): line i starts with head character i, the form kept exactly.

For heads "新年快乐" and 5 characters a line the request draws 4 × (5 + 1) = 24 tokens:

    新····，年····。快····，乐····。

Each line's first token is forced to its head, the next `line_length - 1` are drawn from the
CJK ideographs of the vocabulary only (never punctuation, a newline or the unknown token), and
the line's end is forced: "，" after an odd line, "。" after an even one and after the last.
The seed is a newline: the poem corpus (corpora/tang.txt.gz) has one poem per line, so that is
where a poem starts. It needs a character-level model whose vocabulary has "，" and "。"; a
head the vocabulary lacks is refused with the characters named, before anything is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from core.book import SHIPPED
from core.bundle import Bundle
from core.constraints import Allowed, Schedule
from core.generator import Request
from core.tokenizers import UNKNOWN_ID, Tokenizer

LINE_LENGTHS = (5, 7)
MAX_HEADS = 8  # a 律诗 (regulated verse) has 8 lines: the longest regular form
COMMA, STOP = "，", "。"
SEED = "\n"
POEM_CORPORA = ("tang",)  # shipped corpora whose models write in this form


class AcrosticError(ValueError):
    """An acrostic this model cannot write; `missing` holds heads outside its vocabulary."""

    def __init__(self, message: str, missing: str = "") -> None:
        super().__init__(message)
        self.missing = missing


def is_ideograph(ch: str) -> bool:
    """A CJK unified ideograph (extension blocks included), as the poem corpus's lines hold."""
    code = ord(ch)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x3FFFF


@dataclass(frozen=True)
class Acrostic:
    """What to write: the head characters and how many characters each line has."""

    heads: str
    line_length: int = 5

    def __post_init__(self) -> None:
        if self.line_length not in LINE_LENGTHS:
            raise AcrosticError(f"a line has 5 or 7 characters, not {self.line_length}")
        if not 1 <= len(self.heads) <= MAX_HEADS:
            raise AcrosticError(f"give 1 to {MAX_HEADS} head characters, not {len(self.heads)}")
        strays = "".join(dict.fromkeys(ch for ch in self.heads if not is_ideograph(ch)))
        if strays:
            raise AcrosticError(f"head characters must be Chinese characters, not {strays!r}")

    @property
    def spec(self) -> str:
        """How a stored sample keeps it: "新年快乐|7"."""
        return f"{self.heads}|{self.line_length}"

    @classmethod
    def from_spec(cls, spec: str) -> Acrostic:
        """The acrostic a stored sample's `spec` names (AcrosticError when it is not one)."""
        heads, _, line_length = spec.partition("|")
        if not line_length.isdigit():
            raise AcrosticError(f"not an acrostic: {spec!r}")
        return cls(heads, int(line_length))

    @property
    def length(self) -> int:
        """Tokens drawn: every line's characters and its closing mark."""
        return len(self.heads) * (self.line_length + 1)

    def end_mark(self, line: int) -> str:
        """The mark closing 0-based line `line`: a comma inside a couplet, else a full stop."""
        return COMMA if line % 2 == 0 and line < len(self.heads) - 1 else STOP


@lru_cache(maxsize=32)  # one mask per vocabulary: the bot asks for the same model again and again
def _line_tokens(tokens: tuple[str, ...]) -> Allowed:
    mask = np.array([len(t) == 1 and is_ideograph(t) for t in tokens], dtype=np.bool_)
    mask[UNKNOWN_ID] = False
    mask.flags.writeable = False  # shared by every schedule of this vocabulary
    return mask


def schedule(tokenizer: Tokenizer, acrostic: Acrostic) -> Schedule:
    """The forced heads and marks and the ideograph-only steps between them (AcrosticError)."""
    if tokenizer.kind != "char":
        raise AcrosticError("acrostics need a character-level model")
    index = {token: i for i, token in enumerate(tokenizer.tokens)}
    if COMMA not in index or STOP not in index:
        raise AcrosticError("this model does not write Chinese verse (no ，/。 in its vocabulary)")
    missing = "".join(dict.fromkeys(ch for ch in acrostic.heads if ch not in index))
    if missing:
        raise AcrosticError(f"the model does not know the character(s) {missing}", missing)
    allowed = _line_tokens(tokenizer.tokens)
    if allowed.sum() < 2:
        raise AcrosticError("this model's vocabulary has no Chinese characters to write lines with")
    forced: list[int | None] = []
    masks: list[Allowed | None] = []
    for line, head in enumerate(acrostic.heads):
        forced += [index[head], *[None] * (acrostic.line_length - 1), index[acrostic.end_mark(line)]]
        masks += [None, *[allowed] * (acrostic.line_length - 1), None]
    return Schedule(tuple(forced), tuple(masks))


def acrostic_request(
    tokenizer: Tokenizer,
    acrostic: Acrostic,
    *,
    temperature: float = 0.5,
    rng: np.random.Generator | int | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
) -> Request:
    """The generation request for an acrostic: the poem is the sample's text, exactly."""
    return Request(
        SEED,
        length=acrostic.length,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        rng=rng,
        schedule=schedule(tokenizer, acrostic),
    )


def lines(poem: str, acrostic: Acrostic) -> list[str]:
    """The poem cut into its lines, each with its closing mark (for display, one per line)."""
    step = acrostic.line_length + 1
    return [poem[i : i + step] for i in range(0, len(poem), step)]


def writes_poems(bundle: Bundle) -> bool:
    """Whether a bundle was trained on a shipped poem corpus (by sha256, or by name)."""
    corpus = bundle.meta.get("corpus")
    if not isinstance(corpus, dict) or bundle.tokenizer.kind != "char":
        return False
    return corpus.get("sha256") in {SHIPPED[n] for n in POEM_CORPORA} or corpus.get("name") in POEM_CORPORA
