"""`lstmbot models`: the registry from the command line, and its friendly errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import cli
import migrations
from tests.cli.conftest import bundle_version


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"
    migrations.upgrade(url)
    return url


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_publish_promote_rollback_and_list(
    url: str, tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ("--database-url", url)
    code, out, _ = _run(capsys, "models", "list", *db)
    assert code == 0 and "the registry is empty" in out
    first = bundle_version(tiny_bundle, tmp_path / "shipped", "v1")
    publish = ("models", "publish", str(first), "--role", "champion", "--name", "tiny-char")
    code, out, _ = _run(capsys, *publish, *db)
    assert code == 0 and "published tiny-char v1 as champion" in out and "MODEL_POLL_S" in out
    # The same bundle again changes nothing, and says so (an operator pass read "published" twice).
    code, out, _ = _run(capsys, *publish, *db)
    assert code == 0 and "tiny-char v1 is already in the registry as champion: nothing changed" in out
    lineage = tmp_path / "lineage.json"
    lineage.write_text(json.dumps({"gates": {"copy_rate": "ok"}}))
    tuned = bundle_version(tiny_bundle, tmp_path / "tiny-char-tuned", "v2")
    code, out, _ = _run(
        capsys, "models", "publish", str(tuned), "--name", "tiny-char", "--lineage", str(lineage), *db
    )
    assert code == 0 and "published tiny-char v2 as challenger" in out
    code, out, _ = _run(capsys, "models", "promote", "tiny-char", "v2", *db)
    assert code == 0 and "tiny-char v2 is the champion; v1 retired" in out
    code, out, _ = _run(capsys, "models", "list", "tiny-char", *db)
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "VERSION", "ROLE"]
    assert lines[1].split()[:3] == ["tiny-char", "v2", "champion"]
    assert lines[2].split()[:3] == ["tiny-char", "v1", "retired"] and lines[2].endswith("replaced by v2")
    code, out, _ = _run(capsys, "models", "rollback", "tiny-char", "--reason", "worse duels", *db)
    assert code == 0 and "tiny-char v1 is the champion again" in out
    code, out, _ = _run(capsys, "models", "list", *db)
    assert "rolled back to v1: worse duels" in out
    code, out, _ = _run(capsys, "models", "retire", "tiny-char", "v1", "--reason", "back to MODEL_DIR", *db)
    assert code == 0 and "tiny-char v1 is retired (back to MODEL_DIR)" in out


def test_friendly_errors(
    url: str, tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ("--database-url", url)
    code, _, err = _run(capsys, "models", "promote", "tiny-char", "v9", *db)
    assert code == 2 and err.startswith("lstmbot models: error: tiny-char has no version v9")
    code, _, err = _run(capsys, "models", "publish", str(tmp_path / "nowhere"), *db)
    assert code == 2 and "no such model folder" in err
    code, _, err = _run(capsys, "models", "rollback", "tiny-char", *db)
    assert code == 2 and "no champion in the registry" in err
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    code, _, err = _run(capsys, "models", "publish", str(tiny_bundle), "--lineage", str(bad), *db)
    assert code == 2 and "must be a JSON object" in err
    missing = f"sqlite+aiosqlite:///{tmp_path / 'none.sqlite3'}"
    code, _, err = _run(capsys, "models", "list", "--database-url", missing)
    assert code == 2 and "run `lstmbot db upgrade` first" in err
    unmigrated = tmp_path / "empty.sqlite3"
    unmigrated.touch()
    code, _, err = _run(capsys, "models", "list", "--database-url", f"sqlite+aiosqlite:///{unmigrated}")
    assert code == 2 and "run `lstmbot db upgrade` first" in err
    assert "Traceback" not in err


def test_a_challenger_without_a_champion_anywhere_is_refused(
    url: str,
    tiny_bundle: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An operator pass published `nietzsche-char-tuned` (its folder's name, --name left off) as a
    challenger: served on every replica, never dueled, as no model of that name had a champion."""
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "served"))
    monkeypatch.chdir(tmp_path)  # no ./models here
    db = ("--database-url", url)
    tuned = bundle_version(tiny_bundle, tmp_path / "tiny-char-tuned", "v2")
    code, _, err = _run(capsys, "models", "publish", str(tuned), *db)
    assert code == 2 and "no champion of 'tiny-char-tuned'" in err and "--name MODEL" in err
    assert "registry is empty" in _run(capsys, "models", "list", *db)[1]
    # Served from MODEL_DIR by that name (the bot's champion until one is published): accepted.
    bundle_version(tiny_bundle, tmp_path / "served" / "tiny-char-tuned", "v1")
    code, out, _ = _run(capsys, "models", "publish", str(tuned), *db)
    assert code == 0 and "published tiny-char-tuned v2 as challenger" in out
