"""`make run` runs the bot when a token is set, in the environment or in .env, else the sandbox."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KERNEL = ["core/qkernel.c", "core/qsample.c", "core/qsearch.c", "core/qpython.c"]


def _make_run(folder: Path, env_file: str | None, token: str | None) -> str:
    """What `make run` would start, in a copy of the Makefile whose venv is a stub printing its
    arguments (its stamp newer than the sources, so nothing is installed)."""
    if shutil.which("make") is None:
        pytest.fail("make is not installed")
    shutil.copy(ROOT / "Makefile", folder / "Makefile")
    for name in ["pyproject.toml", "setup.py", *KERNEL]:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).touch()
    bin_dir = folder / "venv" / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in ("lstmbot", "python"):
        (bin_dir / tool).write_text('#!/bin/sh\necho "$(basename "$0") $*"\n')
        (bin_dir / tool).chmod(0o755)
    stamp = folder / "venv" / ".runtime-stamp"
    stamp.touch()
    later = (folder / "setup.py").stat().st_mtime + 60
    os.utime(stamp, (later, later))
    (folder / ".env").unlink(missing_ok=True)
    if env_file is not None:
        (folder / ".env").write_text(env_file)
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_TOKEN", "MAKEFLAGS", "SANDBOX_PORT")}
    if token is not None:
        env["TELEGRAM_TOKEN"] = token
    out = subprocess.run(
        ["make", "-s", "run", "VENV=venv"], cwd=folder, env=env, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_a_token_in_env_or_in_dotenv_runs_the_bot(tmp_path: Path) -> None:
    """An operator pass, 2026-12-07: deploy.md says to put the token in .env and `make run`,
    which looked only at the shell's environment and started the sandbox."""
    assert _make_run(tmp_path, None, None) == "lstmbot sandbox --port 8080"
    assert _make_run(tmp_path, "TELEGRAM_TOKEN=\n", None) == "lstmbot sandbox --port 8080"  # the example
    assert _make_run(tmp_path, "# TELEGRAM_TOKEN=1:a\n", None) == "lstmbot sandbox --port 8080"
    assert _make_run(tmp_path, "ADMIN_USER_IDS=1\nTELEGRAM_TOKEN=123:abc\n", None) == "lstmbot run"
    assert _make_run(tmp_path, None, "123:abc") == "lstmbot run"
