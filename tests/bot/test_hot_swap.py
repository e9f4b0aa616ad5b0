"""Swapping a model while it serves: requests in flight finish on their own weights, new ones
get the new version, and the replaced generator is freed."""

from __future__ import annotations

import asyncio
import gc
import weakref
from dataclasses import replace
from pathlib import Path

import pytest

from bot.generation import CHALLENGER, GenerationService, UnknownModelError, warm
from core.bundle import Bundle, load_bundle
from core.generator import Generator, Request
from tests.conftest import BundleFactory


def _versioned(path: Path, version: str) -> Bundle:
    return replace(load_bundle(path), version=version)


async def test_in_flight_request_keeps_its_weights_and_the_old_generator_is_freed(
    make_bundle: BundleFactory,
) -> None:
    old_bundle = _versioned(make_bundle(), "old")
    new_bundle = _versioned(make_bundle(seed=7), "new")
    service = GenerationService({"tiny": old_bundle}, default="tiny", batch_max=16)
    service.start()
    await service.ready()
    old = weakref.ref(service.generators["tiny"])
    try:
        long_request = Request("supposing that truth", length=2000, temperature=0.8, rng=1)
        running = asyncio.ensure_future(service.generate(long_request))
        for _ in range(100_000):  # until the worker took it in and is stepping it
            if service.outstanding and not service.queue_depth:
                break
            await asyncio.sleep(0)
        fresh = Generator(new_bundle)
        warm(fresh)
        service.install("tiny", fresh)
        assert not running.done()
        short_request = Request("supposing that truth", length=40, temperature=0.8, rng=2)
        short = await service.generate(short_request, model="tiny")
        assert short.model_version == "new" and service.info("tiny").version == "new"
        assert short.text == Generator(new_bundle).generate_one(short_request).text
        finished = await running
        assert finished.model_version == "old"
        assert finished.text == Generator(old_bundle).generate_one(long_request).text
        del fresh, finished
        gc.collect()
        assert old() is None  # nothing holds the replaced generator: its memory is freed
    finally:
        await service.close()


async def test_a_swap_while_idle_frees_the_old_generator_at_once(make_bundle: BundleFactory) -> None:
    service = GenerationService({"tiny": _versioned(make_bundle(), "old")}, default="tiny")
    service.start()
    try:
        await service.generate(Request("truth", length=10, rng=0))  # its batch exists, now idle
        old = weakref.ref(service.generators["tiny"])
        service.install("tiny", Generator(_versioned(make_bundle(seed=3), "new")))
        gc.collect()
        assert old() is None
    finally:
        await service.close()


async def test_challengers_and_versions_are_looked_up_by_role(make_bundle: BundleFactory) -> None:
    champion = _versioned(make_bundle(), "v1")
    service = GenerationService({"tiny": champion}, default="tiny")
    service.start()
    try:
        with pytest.raises(UnknownModelError):
            await service.generate(Request("truth", length=10), model="tiny", role=CHALLENGER)
        service.install("tiny", Generator(_versioned(make_bundle(seed=5), "v2")), role=CHALLENGER)
        request = Request("truth", length=10, rng=3)
        assert (await service.generate(request, model="tiny", role=CHALLENGER)).model_version == "v2"
        assert (await service.generate(request, model="tiny")).model_version == "v1"  # users: the champion
        assert (await service.generate(request, model="tiny", version="v2")).model_version == "v2"
        assert service.by_version("tiny", "v1") is service.generators["tiny"]
        assert service.info("tiny", CHALLENGER).version == "v2"
        assert [m.name for m in service.models()] == ["tiny"]  # challengers are not offered to users
        service.remove("tiny", CHALLENGER)
        with pytest.raises(UnknownModelError):
            service.by_version("tiny", "v2")
        with pytest.raises(ValueError, match="default model"):
            service.remove("tiny")
    finally:
        await service.close()
