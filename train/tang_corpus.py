"""Build `corpora/tang.txt.gz`: the regular-form Tang poems, simplified, one poem per line.

Input: the `全唐诗/poet.tang.N.json` files of the chinese-poetry/chinese-poetry repository
(traditional characters; each record has title, author and paragraphs, one couplet
"line，line。" per paragraph). Kept: quatrains (绝句, 4 lines) and regulated verse (律诗,
8 lines) of 5 or 7 characters a line, every line the same length and made of CJK ideographs
only, every couplet "line，line。". Titles and authors are dropped: the model writes poems.
Each poem is converted to simplified characters with OpenCC's t2s and written as one line;
a poem whose simplified text repeats an earlier one is kept once. Files are read in number
order and records in file order, so the output is the same on every run.

    python -m train.tang_corpus FOLDER_WITH_JSON [--out corpora/tang.txt.gz]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

FILE_PATTERN = re.compile(r"poet\.tang\.(\d+)\.json")
LINE_LENGTHS = (5, 7)
LINE_COUNTS = (4, 8)  # 绝句 and 律诗
OPENCC_CONFIG = "t2s"
# CJK Unified Ideographs, the extension blocks included: t2s maps some traditional characters
# to their standard simplified forms there (鑪 -> 𬬻). The source's missing-character box □,
# its notes' brackets and Latin letters are all outside.
_IDEOGRAPH = "[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0003ffff]"
_FORMS = {
    (n, lines): re.compile(rf"(?:{_IDEOGRAPH}{{{n}}}，{_IDEOGRAPH}{{{n}}}。){{{lines // 2}}}")
    for n in LINE_LENGTHS
    for lines in LINE_COUNTS
}
FORM_NAMES = {(5, 4): "五言绝句", (7, 4): "七言绝句", (5, 8): "五言律诗", (7, 8): "七言律诗"}


def poem_form(text: str) -> tuple[int, int] | None:
    """(characters per line, lines) when `text` is a regular quatrain or regulated verse."""
    for form, pattern in _FORMS.items():
        if pattern.fullmatch(text):
            return form
    return None


def source_files(folder: Path) -> list[Path]:
    """The folder's `poet.tang.N.json` files in number order (0, 1000, 2000, ...)."""
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := FILE_PATTERN.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


@dataclass
class Stats:
    """What the build kept and dropped."""

    records: int = 0
    irregular: int = 0  # not a regular form (in the traditional source)
    changed_by_conversion: int = 0  # no longer a regular form after t2s (never seen so far)
    duplicates: int = 0
    forms: Counter[tuple[int, int]] = field(default_factory=Counter)


def select(records: Iterable[dict[str, object]], convert: Callable[[str], str], stats: Stats) -> list[str]:
    """The kept poems, simplified, in input order, each once."""
    poems: list[str] = []
    seen: set[str] = set()
    for record in records:
        stats.records += 1
        paragraphs = record.get("paragraphs")
        if not isinstance(paragraphs, list) or not all(isinstance(p, str) for p in paragraphs):
            stats.irregular += 1
            continue
        text = "".join(p.strip() for p in paragraphs)
        if poem_form(text) is None:
            stats.irregular += 1
            continue
        simplified = convert(text)
        form = poem_form(simplified)
        if form is None:
            stats.changed_by_conversion += 1
            continue
        if simplified in seen:
            stats.duplicates += 1
            continue
        seen.add(simplified)
        stats.forms[form] += 1
        poems.append(simplified)
    return poems


class _Converter:
    """OpenCC's traditional-to-simplified conversion (imported here: only this build needs it)."""

    def __init__(self) -> None:
        from opencc import OpenCC  # the `corpora` extra: opencc-python-reimplemented

        self._cc = OpenCC(OPENCC_CONFIG)

    def __call__(self, text: str) -> str:
        return str(self._cc.convert(text))


def opencc_version() -> str:
    """The installed OpenCC package and version, for the record."""
    from importlib.metadata import PackageNotFoundError, version

    for name in ("opencc-python-reimplemented", "opencc"):
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            continue
    return "unknown"


def encode(poems: Sequence[str]) -> bytes:
    """The corpus text: one poem per line, each line ending in a newline."""
    return "".join(f"{poem}\n" for poem in poems).encode("utf-8")


def write_gzip(data: bytes, out: Path) -> None:
    """gzip with no timestamp or name inside, so rebuilding gives the same bytes."""
    out.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))


def report(stats: Stats, data: bytes) -> str:
    """The counts corpora/README.md records."""
    text = data.decode("utf-8")
    poems = sum(stats.forms.values())
    lines = [
        f"records read: {stats.records:,}; not a regular form: {stats.irregular:,}; "
        f"changed by conversion: {stats.changed_by_conversion:,}; duplicates: {stats.duplicates:,}",
        f"poems kept: {poems:,}",
        *(f"  {name} ({n}x{lines}): {stats.forms[(n, lines)]:,}" for (n, lines), name in FORM_NAMES.items()),
        f"characters: {len(text):,} ({len(set(text)):,} distinct, newlines and punctuation included); "
        f"bytes: {len(data):,}",
        f"sha256 (uncompressed): {hashlib.sha256(data).hexdigest()}",
        f"conversion: {opencc_version()}, config {OPENCC_CONFIG}",
    ]
    return "\n".join(lines)


def _records(files: Iterable[Path]) -> Iterator[dict[str, object]]:
    for path in files:
        yield from json.loads(path.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    """Build the corpus from a folder of the source JSON files and print its counts."""
    parser = argparse.ArgumentParser(prog="python -m train.tang_corpus", description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="folder holding 全唐诗/poet.tang.N.json")
    parser.add_argument("--out", type=Path, default=Path("corpora/tang.txt.gz"))
    args = parser.parse_args(argv)
    files = source_files(args.source)
    if not files:
        print(f"{args.source}: no poet.tang.N.json files", file=sys.stderr)
        return 2
    stats = Stats()
    data = encode(select(_records(files), _Converter(), stats))
    if args.out.suffix == ".gz":
        write_gzip(data, args.out)
    else:
        args.out.write_bytes(data)
    print(report(stats, data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
