"""`lstmbot sandbox` as a newcomer runs it: the page, the demo chats and the bot answering."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import wait_for_sandbox

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(url: str, body: dict[str, object] | None = None) -> bytes:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return bytes(resp.read())


def test_sandbox_serves_the_page_and_the_bot_answers(tmp_path: Path, model_dir: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'sb.sqlite3'}",
        "MODEL_DIR": str(model_dir),
        "DEFAULT_MODEL": "tiny-char",
    }
    env.pop("TELEGRAM_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "sandbox", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_sandbox(proc)
        base = f"http://127.0.0.1:{port}"
        assert b"lstmbot sandbox" in fetch(base + "/")
        assert b"renderText" in fetch(base + "/static/sandbox.js")
        state = json.loads(fetch(base + "/sandbox/state"))
        ann = state["users"][0]
        assert [c["info"]["type"] for c in state["chats"]].count("supergroup") == 1
        fetch(base + "/sandbox/send", {"user_id": ann["id"], "chat_id": ann["id"], "text": "truth"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = json.loads(fetch(base + "/sandbox/state"))
            chat = next(c for c in state["chats"] if c["id"] == ann["id"])
            replies = [m for m in chat["messages"] if m["from"]["is_bot"]]
            if replies:
                break
            time.sleep(0.2)
        assert replies and replies[0]["text"].startswith("truth")
        assert any(
            b["text"].startswith("👍") for row in replies[0]["reply_markup"]["inline_keyboard"] for b in row
        )
        assert {c["command"] for c in state["commands"]["default"]} >= {"gen", "temp"}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0
    assert "Traceback" not in out
