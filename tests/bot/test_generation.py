"""The generation service: batching, the queue cap, model loading and shutdown."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from bot.generation import GenerationService, QueueFullError, ServiceClosedError, load_models
from core.bundle import BundleError, load_bundle
from core.generator import Generator, Request


@pytest.fixture
def model_dir(tmp_path: Path, tiny_bundle: Path) -> Path:
    shutil.copytree(tiny_bundle, tmp_path / "tiny")
    return tmp_path


async def test_concurrent_requests_are_batched_and_match_single_runs(tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    service = GenerationService({"tiny": bundle}, default="tiny", batch_max=16)
    batches: list[int] = []
    original = service.generators["tiny"].generate

    def spy(requests: list[Request]) -> list[object]:
        batches.append(len(requests))
        return original(requests)  # type: ignore[return-value]

    service.generators["tiny"].generate = spy  # type: ignore[method-assign, assignment]
    service.start()
    try:
        requests = [Request(f"truth number {i}", length=30, temperature=0.7, rng=i) for i in range(10)]
        samples = await asyncio.gather(*(service.generate(r) for r in requests))
    finally:
        await service.close()
    alone = Generator(bundle)
    assert [s.text for s in samples] == [alone.generate_one(r).text for r in requests]
    assert sum(batches) == 10 and max(batches) > 1  # work was shared, not done one by one
    assert service.completed == 10 and service.latency_percentiles()[50] > 0


async def test_queue_cap_refuses_politely(tiny_bundle: Path) -> None:
    service = GenerationService({"tiny": load_bundle(tiny_bundle)}, default="tiny", queue_max=2)
    # Worker not started: the queue fills up.
    pending = [asyncio.ensure_future(service.generate(Request("a", length=5))) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(QueueFullError):
        await service.generate(Request("a", length=5))
    await service.close()
    for task in pending:
        with pytest.raises(ServiceClosedError):
            await task
    with pytest.raises(ServiceClosedError):
        await service.generate(Request("a", length=5))


async def test_empty_seed_is_refused_before_queueing(tiny_bundle: Path) -> None:
    service = GenerationService({"tiny": load_bundle(tiny_bundle)}, default="tiny")
    with pytest.raises(ValueError, match="empty"):
        await service.generate(Request("", length=5))
    assert service.queue_depth == 0


def test_load_models_skips_a_broken_extra_bundle(model_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    shutil.copytree(model_dir / "tiny", model_dir / "broken")
    (model_dir / "broken" / "weights.h5").write_bytes(b"garbage")
    bundles = load_models(model_dir, "tiny")
    assert list(bundles) == ["tiny"]
    assert "skipping model broken" in caplog.text and "weights.h5" in caplog.text


def test_load_models_fails_loudly_for_a_broken_default(model_dir: Path) -> None:
    (model_dir / "tiny" / "vocab.json").unlink()
    with pytest.raises(BundleError, match=r"vocab\.json"):
        load_models(model_dir, "tiny")


def test_model_info_and_random_seed(tiny_bundle: Path) -> None:
    service = GenerationService({"tiny": load_bundle(tiny_bundle)}, default="tiny")
    (info,) = service.models()
    assert info.name == "tiny" and info.level == "char" and info.language == "en"
    assert service.resolve("nope") == "tiny"
    assert service.random_seed_text("tiny")


async def test_close_lets_the_running_batch_finish(tiny_bundle: Path) -> None:
    service = GenerationService({"tiny": load_bundle(tiny_bundle)}, default="tiny")
    service.start()
    running = asyncio.ensure_future(service.generate(Request("truth", length=2000, rng=1)))
    await asyncio.sleep(0.05)  # the worker has taken it
    await service.close(grace_s=30)
    assert len((await running).token_ids) == 2000
