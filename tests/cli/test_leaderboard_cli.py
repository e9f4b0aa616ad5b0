"""`lstmbot leaderboard`: friendly errors, and the empty board on a fresh database."""

from __future__ import annotations

from pathlib import Path

import pytest

import cli
import migrations


def test_missing_database_and_bad_rounds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'none.sqlite3'}"
    assert cli.main(["leaderboard", "--database-url", url]) == 2
    assert "run `lstmbot db upgrade` first" in capsys.readouterr().err
    assert cli.main(["leaderboard", "--rounds", "-1", "--database-url", url]) == 2
    assert "--rounds must be 0 or more" in capsys.readouterr().err


def test_fresh_database_prints_the_empty_board_and_a_chart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.sqlite3'}"
    migrations.upgrade(url)
    chart = tmp_path / "c.png"
    assert cli.main(["leaderboard", "--png", str(chart), "--database-url", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("No counted duel votes yet.") and chart.read_bytes()[:4] == b"\x89PNG"


def test_a_challenger_in_duels_is_shown_as_in_the_chat(
    tmp_path: Path, tiny_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`lstmbot leaderboard` is "the same from the command line" as /leaderboard, which ends with
    each challenger's standing; the command line left it out (operator pass)."""
    from tests.cli.conftest import bundle_version

    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"
    migrations.upgrade(url)
    for folder, version, role in (("one", "v1", "champion"), ("two", "v2", "challenger")):
        bundle = bundle_version(tiny_bundle, tmp_path / folder, version)
        argv = ["models", "publish", str(bundle), "--role", role, "--name", "tiny", "--database-url", url]
        assert cli.main(argv) == 0
    capsys.readouterr()
    assert cli.main(["leaderboard", "--database-url", url]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "tiny" in last and "v2" in last and "0 votes" in last, last
    assert "deciding (promoted when the evidence reaches 20)" in last, last
