"""The Tang corpus builder: which poems it keeps, the simplified text, a byte-stable output."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from train.tang_corpus import Stats, main, poem_form, select, source_files

QUATRAIN = ["床前看月光，疑是地上霜。", "舉頭望山月，低頭思故鄉。"]


def _record(*paragraphs: str) -> dict[str, object]:
    return {"author": "李白", "title": "靜夜思", "paragraphs": list(paragraphs)}


@pytest.mark.parametrize(
    ("text", "form"),
    [
        ("床前看月光，疑是地上霜。舉頭望山月，低頭思故鄉。", (5, 4)),
        ("朝辭白帝彩雲間，千里江陵一日還。兩岸猿聲啼不住，輕舟已過萬重山。", (7, 4)),
        ("一二三四五，一二三四五。" * 4, (5, 8)),
        ("一二三四五六七，一二三四五六七。" * 4, (7, 8)),
        ("床前看月光，疑是地上霜。", None),  # two lines
        ("一二三四五，一二三四五。" * 3, None),  # six lines
        ("一二三四五，一二三四五六七。" * 2, None),  # mixed lengths
        ("床前看月光，疑是地上霜？舉頭望山月，低頭思故鄉。", None),
        ("床前看月□，疑是地上霜。舉頭望山月，低頭思故鄉。", None),
        ("床前看月光。疑是地上霜，舉頭望山月，低頭思故鄉。", None),
        ("床前看月光，疑是地上霜。舉頭望山月，低頭思故鄉。\n", None),
    ],
)
def test_only_the_regular_forms_pass(text: str, form: tuple[int, int] | None) -> None:
    assert poem_form(text) == form


def test_select_simplifies_drops_irregular_and_repeats() -> None:
    opencc = pytest.importorskip("opencc")
    convert = opencc.OpenCC("t2s").convert
    stats = Stats()
    records = [_record(*QUATRAIN), _record("床前看月光，疑是地上霜。"), _record(*QUATRAIN), {"title": "x"}]
    assert select(records, convert, stats) == ["床前看月光，疑是地上霜。举头望山月，低头思故乡。"]
    assert (stats.records, stats.irregular, stats.duplicates, stats.forms[(5, 4)]) == (4, 2, 1, 1)


def test_build_is_in_file_number_order_and_byte_stable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("opencc")
    source = tmp_path / "全唐诗"
    source.mkdir()
    # poet.tang.1000 must come after poet.tang.0 though "1000" < "2" as text.
    seven = ["朝辭白帝彩雲間，千里江陵一日還。", "兩岸猿聲啼不住，輕舟已過萬重山。"]
    (source / "poet.tang.1000.json").write_text(json.dumps([_record(*seven)]), encoding="utf-8")
    (source / "poet.tang.0.json").write_text(json.dumps([_record(*QUATRAIN)]), encoding="utf-8")
    (source / "poet.song.0.json").write_text(json.dumps([_record("不是唐詩，不是唐詩。")]), encoding="utf-8")
    assert [p.name for p in source_files(source)] == ["poet.tang.0.json", "poet.tang.1000.json"]
    out = tmp_path / "tang.txt.gz"
    assert main([str(source), "--out", str(out)]) == 0
    first = out.read_bytes()
    text = gzip.decompress(first).decode("utf-8")
    assert text.split("\n") == [
        "床前看月光，疑是地上霜。举头望山月，低头思故乡。",
        "朝辞白帝彩云间，千里江陵一日还。两岸猿声啼不住，轻舟已过万重山。",
        "",
    ]
    printed = capsys.readouterr().out
    assert hashlib.sha256(text.encode()).hexdigest() in printed and "五言绝句 (5x4): 1" in printed
    assert main([str(source), "--out", str(out)]) == 0
    assert out.read_bytes() == first  # no time stamp inside: a rebuild is identical
