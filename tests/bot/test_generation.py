"""The generation service: batching, the queue cap, model loading and shutdown."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from pathlib import Path

import pytest

from bot.generation import GenerationService, QueueFullError, ServiceClosedError, load_models
from core.bundle import BundleError, load_bundle
from core.generator import Generator, Request

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "nietzsche-char"


@pytest.fixture
def model_dir(tmp_path: Path, tiny_bundle: Path) -> Path:
    shutil.copytree(tiny_bundle, tmp_path / "tiny")
    return tmp_path


async def test_concurrent_requests_are_batched_and_match_single_runs(tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    service = GenerationService({"tiny": bundle}, default="tiny", batch_max=16)
    service.start()
    try:
        requests = [Request(f"truth number {i}", length=30, temperature=0.7, rng=i) for i in range(10)]
        samples = await asyncio.gather(*(service.generate(r) for r in requests))
    finally:
        await service.close()
    alone = Generator(bundle)
    assert [s.text for s in samples] == [alone.generate_one(r).text for r in requests]
    assert service.peak_rows > 1  # work was shared, not done one by one
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


def test_models_setting_loads_only_the_named_ones_and_always_the_default(model_dir: Path) -> None:
    from bot.settings import Settings

    for name in ("two", "three"):
        shutil.copytree(model_dir / "tiny", model_dir / name)
    assert list(load_models(model_dir, "tiny")) == ["tiny", "three", "two"]
    only = Settings(models="two; ", telegram_token=None).models  # type: ignore[arg-type]
    assert only == frozenset({"two"})
    assert list(load_models(model_dir, "tiny", only)) == ["tiny", "two"]


def test_load_models_fails_loudly_for_a_broken_default(model_dir: Path) -> None:
    (model_dir / "tiny" / "vocab.json").unlink()
    with pytest.raises(BundleError, match=r"vocab\.json"):
        load_models(model_dir, "tiny")


async def test_model_info_and_random_seed(tiny_bundle: Path) -> None:
    service = GenerationService({"tiny": load_bundle(tiny_bundle)}, default="tiny")
    (info,) = service.models()
    assert info.name == "tiny" and info.level == "char" and info.language == "en"
    assert service.resolve("nope") == "tiny"
    assert await service.random_seed_text("tiny")


async def test_close_lets_the_running_batch_finish(tiny_bundle: Path) -> None:
    service = GenerationService({"tiny": load_bundle(tiny_bundle)}, default="tiny")
    service.start()
    running = asyncio.ensure_future(service.generate(Request("truth", length=2000, rng=1)))
    await asyncio.sleep(0.05)  # the worker has taken it
    await service.close(grace_s=30)
    assert len((await running).token_ids) == 2000


async def test_a_short_request_finishes_while_a_long_one_runs() -> None:
    # The shipped model, wide enough that 4000 steps take a while (~0.3 s on an AVX2 core, ~0.15 s
    # with AVX-512): a tiny one, run many steps a C call, finishes them before the short requests
    # are even queued.
    bundle = load_bundle(SHIPPED)
    service = GenerationService({"tiny": bundle}, default="tiny")
    service.start()
    try:
        long_request = Request("truth", length=4000, temperature=0.8, rng=1)
        long_task = asyncio.ensure_future(service.generate(long_request))
        await asyncio.sleep(0.05)  # the long one is running
        assert not long_task.done()
        short_requests = [Request(f"why {i}", length=20, temperature=0.8, rng=10 + i) for i in range(3)]
        shorts = await asyncio.gather(*(service.generate(r) for r in short_requests))
        assert not long_task.done()  # the short replies did not wait for the long one
        long_sample = await long_task
    finally:
        await service.close()
    alone = Generator(bundle)
    # Joining a running batch changes nothing: each text equals the request run on its own.
    assert [s.text for s in shorts] == [alone.generate([r])[0].text for r in short_requests]
    assert long_sample.text == alone.generate([long_request])[0].text


async def test_first_chinese_request_never_blocks_the_event_loop(word_bundle: Path) -> None:
    service = GenerationService({"zh": load_bundle(word_bundle)}, default="zh")
    gaps: list[float] = []
    last_tick = [time.perf_counter()]

    async def ticker() -> None:
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last_tick[0])
            last_tick[0] = now

    tick = asyncio.ensure_future(ticker())
    service.start()
    # As the bot does before polling: the segmenter's dictionary and the kernel load in a
    # thread. (Building the dictionary holds the GIL ~0.3 s, so it belongs before the first update.)
    await service.ready()
    await asyncio.sleep(0.3)
    # What a busy shared machine alone costs the ticker (it is added to the allowance below).
    idle_lag, gaps[:] = max(gaps) - 0.005, []
    try:
        sample = await service.generate(Request("宝玉笑道：“我们到园子里去。”", length=30, rng=3), model="zh")
        seed = await service.random_seed_text("zh")
    finally:
        # The gap still open when the work ends counts too (a quick run may never tick at all).
        gaps.append(time.perf_counter() - last_tick[0])
        await service.close()
        tick.cancel()
    assert "rjieba" in sys.modules and len(sample.token_ids) == 30 and seed
    assert max(gaps) < 0.1 + idle_lag, f"the event loop stalled for {max(gaps):.3f} s (idle: {idle_lag:.3f})"
