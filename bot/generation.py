"""The generation service: preloaded models, a bounded queue, and one worker that batches.

Handlers `await service.generate(...)`. The worker keeps one `core.batching.RunningBatch` per
model (continuous batching): between steps, waiting requests join the running batch (up to
`batch_max` rows), and a row that has drawn all its tokens leaves at once and its future is
resolved, so a 20-character reply never waits for a 2000-character one. Steps run in a worker
thread (the compiled kernel releases the GIL), so the event loop keeps answering updates, and
ten users asking at once cost little more than one.

Hot reload (bot/model_watch.py): each model name has a champion (what users get) and may have
a challenger (for duels). `install` swaps a new generator in at once: a request takes its
generator when it is queued, so requests already queued or running finish on the weights they
started with, and a batch keeps its generator until its last row leaves. The replaced
generator is then dropped (`_sweep`), and its memory goes with the last reference.
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
from threadpoolctl import threadpool_limits

from core.acrostic import writes_poems
from core.batching import RunningBatch
from core.bundle import Bundle, BundleError, load_bundle
from core.generator import KERNEL_MAX_ROWS, Generator, Request, Sample
from core.memory import release_free_memory

log = logging.getLogger(__name__)

# How long one trip to the worker thread may keep stepping before new requests may join; a
# trip also ends as soon as a row finishes, so its reply goes out at once.
SLICE_S = 0.02
# The most steps a batch of temperature-only rows runs in one C call (RunningBatch.advance):
# the Python around each step was ~15 us of a one-row step of ~75 us, and it held the GIL the
# event loop needs. Fewer when the slice's time left holds fewer (a full batch: ~3.6 ms a
# step on the AMD EPYC here).
STEPS_A_CALL = 64
BLAS_THREADS = 1


class QueueFullError(Exception):
    """Too many requests are waiting; the caller should ask the user to retry shortly."""


class ServiceClosedError(Exception):
    """The service is shutting down and takes no more work."""


class UnknownModelError(KeyError):
    """No loaded model has that name."""


CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass
class _Job:
    generator: Generator  # taken when queued: a swap meanwhile does not change it
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
    role: str = CHAMPION
    verse: bool = False  # writes poems (core/acrostic.py): shown a couplet a line


def warm(generator: Generator) -> None:
    """Load what a generator needs on first use (the segmenter's dictionary, the kernel), in a thread."""
    generator.tokenizer.encode_counted("warm up 预热")
    generator.warm()


def load_models(model_dir: Path, default: str, only: frozenset[str] = frozenset()) -> dict[str, Bundle]:
    """Load every bundle under `model_dir` (or those named in `only`, the default always); the
    default must load, others are skipped on error.

    Their float32 weights are checked and let go (`weights="disk"`): the generators pack them
    to int8 and nothing in the bot reads them again, so they stay on disk (~30 MB saved)."""
    default_path = model_dir / default
    bundles = {default: load_bundle(default_path, weights="disk")}  # a broken default stops start-up
    if model_dir.is_dir():
        for path in sorted(p for p in model_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if path.name == default or not (path / "config.json").exists():
                continue
            if only and path.name not in only:
                continue
            try:
                bundles[path.name] = load_bundle(path, weights="disk")
            except BundleError as exc:
                log.warning("skipping model %s: %s", path.name, exc)
    return bundles


class GenerationService:
    """Owns the generators and the queue; one worker task serves all requests."""

    def __init__(
        self,
        bundles: dict[str, Bundle],
        *,
        default: str,
        queue_max: int = 256,
        batch_max: int = KERNEL_MAX_ROWS,
        cache_dir: Path | None = None,
    ):
        """`cache_dir`: where the generators may keep their big token tables (core/cache.py)."""
        if default not in bundles:
            raise UnknownModelError(default)
        # The champions, which users get, and the challengers (duels). Each dict is replaced
        # whole on a swap, never changed in place, so a reader may iterate one from a thread.
        self.generators: dict[str, Generator] = {
            name: Generator(bundle, cache_dir=cache_dir) for name, bundle in bundles.items()
        }
        self.challengers: dict[str, Generator] = {}
        release_free_memory()  # packing's float64 temporaries (tens of MB) go back to the system
        self.default = default
        self.batch_max = batch_max
        # None is the stop signal; one extra slot keeps room for it when the queue is full.
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue(maxsize=queue_max + 1)
        self._queue_max = queue_max
        self._in_flight: dict[int, _Job] = {}
        # One running batch per generator (keyed by id: a batch holds its generator, so the id
        # stays its own). Changed on the event loop only, never while a slice is stepping.
        self._running: dict[int, RunningBatch] = {}
        self._stepping = False
        self._worker: asyncio.Task[None] | None = None
        self._warmup: asyncio.Future[None] | None = None
        self.peak_rows = 0  # the most rows ever stepped together (tests and /stats)
        self._closed = False
        self._latencies: deque[float] = deque(maxlen=1000)
        self.started_at = time.time()
        self.completed = 0
        self.failed = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker on the running event loop, and warm the tokenizers in a thread."""
        if self._worker is None:
            loop = asyncio.get_running_loop()
            # One BLAS thread: the event loop needs the other core, and OpenBLAS's second thread
            # spin-waits; on a busy 2-core machine 2 threads made a 64-row step 10x slower (measured
            # with bench/generate.py). Process-wide, like every BLAS setting.
            threadpool_limits(limits=BLAS_THREADS, user_api="blas")
            self._worker = loop.create_task(self._run(), name="generation-worker")
            # the segmenter builds its dictionary (~0.3 s) on first use (and numba, where it stands in for
            # the C kernel, loads its functions, ~2 s): do both now, off the event loop.
            self._warmup = loop.run_in_executor(None, self._warm)

    async def ready(self) -> None:
        """Wait (without blocking the loop) until the warm-up that `start` began is done."""
        if self._warmup is not None:
            await self._warmup

    def _warm(self) -> None:
        for generator in [*self.generators.values(), *self.challengers.values()]:
            warm(generator)
        release_free_memory()  # the segmenter's dictionary build leaves freed blocks behind too

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
        for job in self._in_flight.values():
            if not job.future.done():
                job.future.set_exception(ServiceClosedError("the bot is restarting"))
        self._in_flight.clear()

    # -- public API --------------------------------------------------------------------------

    def models(self) -> list[ModelInfo]:
        """The loaded models, default first."""
        names = [self.default, *sorted(n for n in self.generators if n != self.default)]
        return [self.info(name) for name in names]

    def info(self, name: str, role: str = CHAMPION) -> ModelInfo:
        """Facts about one loaded model (its champion, or its challenger)."""
        bundle = self.generator(name, role).bundle
        corpus = bundle.meta.get("corpus", {})
        return ModelInfo(
            name=name,
            version=bundle.version,
            level=bundle.level,
            language=bundle.language,
            window=bundle.model.window,
            corpus=str(corpus.get("name", "")) if isinstance(corpus, dict) else "",
            role=role,
            verse=writes_poems(bundle),
        )

    def generator(self, name: str, role: str = CHAMPION) -> Generator:
        """The generator serving `name` in `role` now (UnknownModelError: none)."""
        served = self.generators if role == CHAMPION else self.challengers if role == CHALLENGER else {}
        try:
            return served[name]
        except KeyError:
            raise UnknownModelError(f"{name} ({role})") from None

    def by_version(self, name: str, version: str) -> Generator:
        """The loaded generator of `name` at `version`, champion or challenger."""
        for served in (self.generators, self.challengers):
            generator = served.get(name)
            if generator is not None and generator.bundle.version == version:
                return generator
        raise UnknownModelError(f"{name} {version}")

    def install(self, name: str, generator: Generator, role: str = CHAMPION) -> None:
        """Serve `generator` as `name`'s champion or challenger from the next request on
        (warm it first: `warm`). What was queued or running keeps its own generator."""
        if role == CHAMPION:
            self.generators = {**self.generators, name: generator}
        elif role == CHALLENGER:
            self.challengers = {**self.challengers, name: generator}
        else:
            raise ValueError(f"role must be {CHAMPION} or {CHALLENGER}, got {role!r}")
        self._sweep()

    def remove(self, name: str, role: str = CHAMPION) -> None:
        """Stop serving `name` in `role` (the default model's champion always stays)."""
        if role == CHAMPION:
            if name == self.default:
                raise ValueError(f"the default model {name} cannot be removed, only replaced")
            self.generators = {n: g for n, g in self.generators.items() if n != name}
        else:
            self.challengers = {n: g for n, g in self.challengers.items() if n != name}
        self._sweep()

    def _sweep(self) -> None:
        """Drop the idle batches of generators no longer served: nothing else holds them."""
        if self._stepping:
            return  # the slice in progress may be adding rows; the worker sweeps after it
        live = {id(g) for g in (*self.generators.values(), *self.challengers.values())}
        for key in [k for k, batch in self._running.items() if not len(batch) and k not in live]:
            del self._running[key]

    def resolve(self, name: str | None) -> str:
        """The model to use for a stored preference (falls back to the default)."""
        return name if name in self.generators else self.default

    @property
    def queue_depth(self) -> int:
        """Jobs waiting for the worker."""
        return self._queue.qsize()

    @property
    def outstanding(self) -> int:
        """Jobs not yet done: waiting for the worker or being generated."""
        return self._queue.qsize() + len(self._in_flight)

    def latency_percentiles(self, percentiles: Iterable[float] = (50, 90, 99)) -> dict[float, float]:
        """Queue-to-done latency in seconds over the last 1,000 requests."""
        if not self._latencies:
            return {}
        values = np.percentile(np.array(self._latencies), list(percentiles))
        return dict(zip(percentiles, (float(v) for v in values), strict=True))

    async def random_seed_text(self, model: str, rng: np.random.Generator | None = None) -> str:
        """A seed cut from the model's own vocabulary of common tokens (for an empty /gen)."""
        generator = self.generators[self.resolve(model)]
        rng = rng or np.random.default_rng()
        corpus_seeds = generator.bundle.meta.get("seeds")
        if isinstance(corpus_seeds, list) and corpus_seeds:
            return str(corpus_seeds[int(rng.integers(len(corpus_seeds)))])
        # No stored seeds: let the model itself write a short opening from a newline (in a
        # thread: generating on the event loop would stall every other update).
        request = Request("\n", length=20, temperature=0.5, rng=rng)
        sample = await asyncio.to_thread(generator.generate_one, request)
        return sample.text.strip() or "the"

    async def generate(
        self, request: Request, *, model: str | None = None, role: str = CHAMPION, version: str | None = None
    ) -> Sample:
        """Queue a request and wait for its sample: the champion of `model` (unknown names: the
        default's), its challenger, or a loaded `version` of it. The sample carries the
        version that drew it."""
        if self._closed:
            raise ServiceClosedError("the bot is restarting")
        if version is not None:
            generator = self.by_version(model or self.default, version)
        elif role == CHAMPION:
            generator = self.generators[self.resolve(model)]
        else:
            generator = self.generator(model or self.default, role)
        if self._queue.qsize() >= self._queue_max:
            raise QueueFullError("too many requests are waiting")
        # Raise ValueError now for an empty seed; encoding runs in a thread because a word
        # tokenizer (jieba's words) may still be loading its dictionary.
        await asyncio.to_thread(generator.encode, request.seed)
        if self._closed:
            raise ServiceClosedError("the bot is restarting")
        if self._queue.qsize() >= self._queue_max:
            raise QueueFullError("too many requests are waiting")
        job = _Job(generator, request, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(job)
        return await job.future

    # -- the worker --------------------------------------------------------------------------

    async def _run(self) -> None:
        stopping = False
        while True:
            rows = sum(len(batch) for batch in self._running.values())
            if rows == 0:
                if stopping:
                    return
                first = await self._queue.get()  # idle: wait for work
                if first is None:
                    return
                joining = [first]
                first = None  # the frame waits here again: it must not keep a job (a generator)
            else:
                joining = []
            while rows + len(joining) < self.batch_max and not self._queue.empty():
                job = self._queue.get_nowait()
                if job is None:
                    stopping = True
                    break
                joining.append(job)
            job = None
            await self._advance([job for job in joining if not job.future.cancelled()])
            joining = []

    async def _advance(self, joining: list[_Job]) -> None:
        """Add the joining jobs, then step in a thread until a row finishes or a slice passes."""
        for job in joining:
            self._in_flight[id(job)] = job
            if id(job.generator) not in self._running:
                self._running[id(job.generator)] = RunningBatch(job.generator)
        gone = {key for key, job in self._in_flight.items() if job.future.done()}
        for key in gone:
            del self._in_flight[key]
        self._stepping = True
        try:
            finished = await asyncio.to_thread(self._slice, joining, gone)
        except Exception as exc:  # one bad step must not kill the worker: fail what was running
            log.exception("generation failed for %d rows", len(self._in_flight))
            self._fail_all(exc)
            return
        finally:
            self._stepping = False
        self._sweep()
        done = time.monotonic()
        for key, sample in finished:
            if key not in self._in_flight:  # closed meanwhile
                continue
            job = self._in_flight.pop(key)
            self._latencies.append(done - job.queued_at)
            self.completed += 1
            if not job.future.done():
                job.future.set_result(sample)

    def _slice(self, joining: list[_Job], gone: set[int]) -> list[tuple[int, Sample]]:
        """Worker thread: admit, drop abandoned rows, then step every model's batch."""
        by_generator: dict[int, list[tuple[int, Request]]] = {}
        for job in joining:
            by_generator.setdefault(id(job.generator), []).append((id(job), job.request))
        for key, jobs in by_generator.items():
            self._running[key].add_many(jobs)  # primed together: one pass over the weights
        for batch in self._running.values():
            batch.discard(gone)
        self.peak_rows = max(self.peak_rows, sum(len(b) for b in self._running.values()))
        finished: list[tuple[int, Sample]] = []
        deadline = time.perf_counter() + SLICE_S
        while not finished and time.perf_counter() < deadline:
            busy = [batch for batch in self._running.values() if len(batch)]
            if not busy:
                break
            for batch in busy:
                # As many steps as fit the slice's time left at the last call's pace (one to
                # learn it), so a request arriving meanwhile joins within about a slice.
                pace = batch.seconds_a_step
                left = deadline - time.perf_counter()
                most = 1 if pace <= 0 else max(1, min(STEPS_A_CALL, int(left / pace)))
                finished.extend(batch.advance(most))
        return finished

    def _fail_all(self, exc: Exception) -> None:
        self.failed += len(self._in_flight)
        for job in self._in_flight.values():
            if not job.future.done():
                job.future.set_exception(exc)
        self._in_flight.clear()
        self._running = {}
