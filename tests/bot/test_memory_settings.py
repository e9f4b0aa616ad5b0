"""What keeps the bot small: the cache setting, and libraries left unloaded until needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import DEFAULT_CACHE_DIR, Settings

ROOT = Path(__file__).resolve().parents[2]


def test_the_cache_folder_defaults_to_data_cache_and_an_empty_value_turns_it_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CACHE_DIR", raising=False)
    assert Settings(_env_file=None).cache_dir == DEFAULT_CACHE_DIR  # type: ignore[call-arg]
    monkeypatch.setenv("CACHE_DIR", "")
    assert Settings(_env_file=None).cache_dir is None  # type: ignore[call-arg]
    monkeypatch.setenv("CACHE_DIR", "/var/cache/lstmbot")
    assert Settings(_env_file=None).cache_dir == Path("/var/cache/lstmbot")  # type: ignore[call-arg]


def test_the_bot_loads_neither_numba_nor_matplotlib_until_they_are_needed() -> None:
    """numba (~110 MB with LLVM) only stands in for a missing C kernel; matplotlib (~30 MB)
    only draws /leaderboard's chart."""
    code = (
        "import sys\n"
        "import bot.app, cli.run\n"
        "from bot.chart import leaderboard_png\n"
        "print(sorted(m for m in ('numba', 'llvmlite', 'matplotlib', 'scipy') if m in sys.modules))\n"
        "leaderboard_png([], [], title='t')\n"
        "print('matplotlib' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split("\n")[:2] == ["[]", "True"]
