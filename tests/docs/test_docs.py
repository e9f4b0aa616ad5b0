"""The README and docs/: the tests and files they cite exist, and no paragraph breaks off."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# In a `code span`: `file.py::test_name`, `::test_name` (the file cited last on the line),
# `tests/dir/file.py`, `core/module.py`, or a bare `test_name`.
CITATION = re.compile(r"(?:[\w/]*\.py)?::\w+|[\w/]+\.py|\btest_\w+")
LIST_OR_TABLE = re.compile(r"\s*(?:[-*|]|\d+\.)\s")


def _test_files() -> dict[Path, set[str]]:
    """Every test module and the test functions it defines."""
    pattern = re.compile(r"^\s*(?:async\s+)?def\s+(test_\w+)\s*\(", re.M)
    return {path: set(pattern.findall(path.read_text())) for path in (ROOT / "tests").rglob("test_*.py")}


def _missing_citations(doc: Path, tests: dict[Path, set[str]]) -> list[str]:
    """The citations in `doc` that name no test function or no file."""
    defined = set().union(*tests.values())
    missing: list[str] = []
    for line in doc.read_text().splitlines():
        last_file = ""
        for span in re.findall(r"`([^`]*)`", line):
            for cite in CITATION.findall(span):
                if "::" in cite:
                    file, name = cite.split("::")
                    last_file = file or last_file
                    files = [p for p in tests if p.name == Path(last_file).name]
                    if not any(name in tests[p] for p in files):
                        missing.append(cite)
                elif cite.endswith(".py"):
                    if "/" not in cite and cite.startswith("test_"):
                        last_file = cite
                        if not any(p.name == cite for p in tests):
                            missing.append(cite)
                    elif not (ROOT / cite).is_file():
                        missing.append(cite)
                elif cite not in defined:
                    missing.append(cite)
    return missing


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_test_and_file_cited_exists(doc: Path) -> None:
    assert _missing_citations(doc, _test_files()) == []


class Block(NamedTuple):
    """A Markdown block: a fenced code block, or text (a paragraph, list or table)."""

    code: bool
    first: str
    last: str


def _blocks(text: str) -> list[Block]:
    """The Markdown's blocks, in order."""
    blocks: list[Block] = []
    lines: list[str] = []
    fenced = False
    for line in [*text.splitlines(), ""]:
        if fenced:
            if line.startswith("```"):
                blocks.append(Block(True, "", ""))
                fenced = False
        elif line.startswith("```") or not line.strip():
            if lines:
                blocks.append(Block(False, lines[0], lines[-1]))
                lines = []
            fenced = line.startswith("```")
        else:
            lines.append(line)
    return blocks


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_no_paragraph_breaks_off_at_a_colon(doc: Path) -> None:
    # A paragraph that ends "...:" announces what follows: a code block, a list or a table.
    blocks = _blocks(doc.read_text())
    broken = [
        block.last
        for block, after in zip(blocks, [*blocks[1:], None], strict=True)
        if not block.code
        and block.last.rstrip().endswith(":")
        and not LIST_OR_TABLE.match(block.last)
        and not (after is not None and (after.code or LIST_OR_TABLE.match(after.first)))
    ]
    assert broken == []
