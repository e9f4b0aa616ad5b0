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
