"""`lstmbot sandbox` from a terminal: the port it listens on, a busy port, one log line per update."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for_sandbox
from tests.e2e.conftest import model_dir

__all__ = ["model_dir"]  # the e2e models fixture, shared
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port something else is listening on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def sandbox_env(tmp_path: Path, models: Path | None = None, **extra: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'sb.sqlite3'}", **extra}
    env.pop("TELEGRAM_TOKEN", None)
    if models is not None:
        env.update({"MODEL_DIR": str(models), "DEFAULT_MODEL": "tiny-char"})
    return env


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "sandbox", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )


def test_a_busy_port_is_named_in_a_one_line_error(tmp_path: Path, busy_port: int) -> None:
    done = run_cli("--port", str(busy_port), env=sandbox_env(tmp_path))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    (line,) = done.stderr.strip().splitlines()
    assert f"port {busy_port} is already in use" in line and "--port" in line
    assert not (tmp_path / "sb.sqlite3").exists()  # it failed before touching anything


def test_sandbox_port_comes_from_the_environment(tmp_path: Path, busy_port: int) -> None:
    done = run_cli(env=sandbox_env(tmp_path, SANDBOX_PORT=str(busy_port)))
    assert done.returncode == 2 and f"port {busy_port} is already in use" in done.stderr


def test_a_bad_sandbox_port_is_a_friendly_error(tmp_path: Path) -> None:
    done = run_cli(env=sandbox_env(tmp_path, SANDBOX_PORT="eighty"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "SANDBOX_PORT" in done.stderr and "'eighty'" in done.stderr


def fetch(url: str, body: dict[str, object] | None = None) -> bytes:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return bytes(resp.read())


@pytest.mark.slow
def test_the_terminal_shows_each_message_and_the_bots_reply(tmp_path: Path, model_dir: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "sandbox"],
        cwd=ROOT,
        env=sandbox_env(tmp_path, model_dir, SANDBOX_PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = wait_for_sandbox(proc)
        assert f":{port}/" in line
        base = f"http://127.0.0.1:{port}"
        fetch(base + "/sandbox/send", {"user_id": 1001, "chat_id": 1001, "text": "/temp"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            chat = next(c for c in json.loads(fetch(base + "/sandbox/state"))["chats"] if c["id"] == 1001)
            if any(m["from"]["is_bot"] for m in chat["messages"]):
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "Ann (user 1001) in chat 1001: /temp" in out
    assert "bot sendMessage in chat 1001" in out
    assert "getUpdates" not in out  # the bot's polling is not news
