"""The generation service: preloaded models, a bounded queue, and one worker that batches.

Handlers `await service.generate(...)`; the worker takes every job waiting (up to `batch_max`),
groups them by model and advances each group together through `core.Generator` in a thread,
so the event loop keeps answering other updates while the LSTM runs, and ten users asking at
once cost about as much as one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.bundle import Bundle, BundleError, load_bundle
from core.generator import Generator, Request, Sample

log = logging.getLogger(__name__)


class QueueFullError(Exception):
    """Too many requests are waiting; the caller should ask the user to retry shortly."""


class ServiceClosedError(Exception):
    """The service is shutting down and takes no more work."""


class UnknownModelError(KeyError):
    """No loaded model has that name."""


@dataclass
class _Job:
    model: str
    request: Request
    future: asyncio.Future[Sample]
    queued_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class ModelInfo:
    """What the bot shows about a loaded model."""

    name: str
    version: str
    level: str
    language: str
    window: int
    corpus: str


def load_models(model_dir: Path, default: str) -> dict[str, Bundle]:
    """Load every bundle under `model_dir`; the default must load, others are skipped on error."""
    default_path = model_dir / default
    bundles = {default: load_bundle(default_path)}  # a broken default stops start-up, loudly
    if model_dir.is_dir():
        for path in sorted(p for p in model_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if path.name == default or not (path / "config.json").exists():
                continue
            try:
                bundles[path.name] = load_bundle(path)
            except BundleError as exc:
                log.warning("skipping model %s: %s", path.name, exc)
    return bundles


class GenerationService:
    """Owns the generators and the queue; one worker task serves all requests."""

    def __init__(
        self, bundles: dict[str, Bundle], *, default: str, queue_max: int = 256, batch_max: int = 32
    ):
        if default not in bundles:
            raise UnknownModelError(default)
        self.generators = {name: Generator(bundle) for name, bundle in bundles.items()}
        self.default = default
        self.batch_max = batch_max
        # None is the stop signal; one extra slot keeps room for it when the queue is full.
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue(maxsize=queue_max + 1)
        self._queue_max = queue_max
        self._in_flight: list[_Job] = []
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self._latencies: deque[float] = deque(maxlen=1000)
        self.started_at = time.time()
        self.completed = 0
        self.failed = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker on the running event loop."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="generation-worker")

    async def close(self, grace_s: float = 5.0) -> None:
        """Stop taking work, let the batch in progress finish (up to `grace_s`), fail the rest."""
        self._closed = True
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if job is not None and not job.future.done():
                job.future.set_exception(ServiceClosedError("the bot is restarting"))
        if self._worker is not None:
            self._queue.put_nowait(None)  # wakes an idle worker, or stops it after its batch
            _, running = await asyncio.wait({self._worker}, timeout=grace_s)
            if running:
                self._worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._worker
            self._worker = None
        for job in self._in_flight:
            if not job.future.done():
                job.future.set_exception(ServiceClosedError("the bot is restarting"))

    # -- public API --------------------------------------------------------------------------

    def models(self) -> list[ModelInfo]:
        """The loaded models, default first."""
        names = [self.default, *sorted(n for n in self.generators if n != self.default)]
        return [self.info(name) for name in names]

    def info(self, name: str) -> ModelInfo:
        """Facts about one loaded model."""
        try:
            bundle = self.generators[name].bundle
        except KeyError:
            raise UnknownModelError(name) from None
        corpus = bundle.meta.get("corpus", {})
        return ModelInfo(
            name=name,
            version=bundle.version,
            level=bundle.level,
            language=bundle.language,
            window=bundle.model.window,
            corpus=str(corpus.get("name", "")) if isinstance(corpus, dict) else "",
        )

    def resolve(self, name: str | None) -> str:
        """The model to use for a stored preference (falls back to the default)."""
        return name if name in self.generators else self.default

    @property
    def queue_depth(self) -> int:
        """Jobs waiting for the worker."""
        return self._queue.qsize()

    def latency_percentiles(self, percentiles: Iterable[float] = (50, 90, 99)) -> dict[float, float]:
        """Queue-to-done latency in seconds over the last 1,000 requests."""
        if not self._latencies:
            return {}
        values = np.percentile(np.array(self._latencies), list(percentiles))
        return dict(zip(percentiles, (float(v) for v in values), strict=True))

    def random_seed_text(self, model: str, rng: np.random.Generator | None = None) -> str:
        """A seed cut from the model's own vocabulary of common tokens (for an empty /gen)."""
        generator = self.generators[self.resolve(model)]
        rng = rng or np.random.default_rng()
        corpus_seeds = generator.bundle.meta.get("seeds")
        if isinstance(corpus_seeds, list) and corpus_seeds:
            return str(corpus_seeds[int(rng.integers(len(corpus_seeds)))])
        # No stored seeds: let the model itself write a short opening from a newline.
        sample = generator.generate_one(Request("\n", length=20, temperature=0.5, rng=rng))
        return sample.text.strip() or "the"

    async def generate(self, request: Request, *, model: str | None = None) -> Sample:
        """Queue a request and wait for its sample."""
        if self._closed:
            raise ServiceClosedError("the bot is restarting")
        name = self.resolve(model)
        self.generators[name].context_ids(request.seed)  # raise ValueError now for an empty seed
        if self._queue.qsize() >= self._queue_max:
            raise QueueFullError("too many requests are waiting")
        job = _Job(name, request, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(job)
        return await job.future

    # -- the worker --------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            jobs = [first]
            stop = False
            while len(jobs) < self.batch_max and not self._queue.empty():
                job = self._queue.get_nowait()
                if job is None:
                    stop = True
                    break
                jobs.append(job)
            by_model: dict[str, list[_Job]] = {}
            for job in jobs:
                if not job.future.cancelled():
                    by_model.setdefault(job.model, []).append(job)
            self._in_flight = jobs
            for name, group in by_model.items():
                await self._run_group(name, group)
            self._in_flight = []
            if stop:
                return

    async def _run_group(self, name: str, group: list[_Job]) -> None:
        generator = self.generators[name]
        try:
            samples = await asyncio.to_thread(generator.generate, [job.request for job in group])
        except Exception as exc:  # one bad batch must not kill the worker
            log.exception("generation failed for a batch of %d", len(group))
            self.failed += len(group)
            for job in group:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        done = time.monotonic()
        for job, sample in zip(group, samples, strict=True):
            self._latencies.append(done - job.queued_at)
            self.completed += 1
            if not job.future.done():
                job.future.set_result(sample)
