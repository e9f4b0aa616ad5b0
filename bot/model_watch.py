"""Hot reload: every replica follows the model registry and swaps new versions in while serving.

Every `MODEL_POLL_S` seconds one small query reads the champions and challengers (name, role,
version, archive sha256). When one changed, the replica fetches that version's bundle from the
database once, checks its sha256, unpacks it into the cache folder (MODEL_CACHE_DIR; a version
already there is not fetched again), loads and warms it in a thread and installs it in the
GenerationService: new requests get it, requests in flight finish on their old weights, and
the old generator's memory goes when its last request does (bot/generation.py). A version
that fails to load is logged and tried again after `RETRY_S`; the old one keeps serving.

A champion that leaves the registry without a successor (retired by hand) hands its name back
to the bundle in MODEL_DIR, reloaded from there; a name the registry alone knows is served by
every replica, MODEL_DIR or not. The replicas need no shared volume: the database holds the
bundles.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from bot.db import repository as repo
from bot.db.database import Database
from bot.generation import CHALLENGER, CHAMPION, GenerationService, warm
from bot.novelty import NoveltyService
from core.bundle import BundleError, load_bundle
from core.bundle_archive import unpack
from core.generator import Generator
from core.memory import release_free_memory

log = logging.getLogger(__name__)

RETRY_S = 300.0  # a version that failed to load is tried again after this long
PRUNE_AFTER_S = 3600.0  # cache folders of versions no longer live are deleted after this long


@dataclass(frozen=True)
class Swap:
    """One change this replica made: what `name` in `role` serves now (None: nothing)."""

    name: str
    role: str
    version: str | None
    source: str  # "registry", "MODEL_DIR" or "none"


def _build(folder: Path, version: str | None = None) -> Generator:
    """Worker thread: load, check and warm a bundle (a new version is ready before it serves)."""
    # As at start (bot.generation.load_models): the float32 weights are checked and left on disk.
    bundle = load_bundle(folder, weights="disk")
    if version is not None and bundle.version != version:
        raise BundleError(f"{folder}: the bundle says version {bundle.version}, the registry {version}")
    generator = Generator(bundle)
    warm(generator)
    release_free_memory()  # packing's temporaries
    return generator


class ModelWatcher:
    """Polls the registry and keeps the GenerationService on its champions and challengers."""

    def __init__(
        self,
        db: Database,
        generation: GenerationService,
        *,
        cache_dir: Path,
        poll_s: float,
        model_dir: Mapping[str, Path],
        novelty: NoveltyService | None = None,
    ) -> None:
        self.db = db
        self.generation = generation
        self.cache_dir = cache_dir
        self.poll_s = poll_s
        self.model_dir = dict(model_dir)  # name -> its MODEL_DIR bundle, served without a champion
        self.novelty = novelty
        self.served: dict[tuple[str, str], str] = {}  # (name, role) -> registry version served
        self._failed: dict[tuple[str, str, str], float] = {}  # (name, version, sha) -> when
        self._task: asyncio.Task[None] | None = None
        self._down = False
        self.swaps = 0

    def start(self) -> None:
        """Poll every `poll_s` seconds from now on."""
        if self._task is None and self.poll_s > 0:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="model-watch")

    async def stop(self) -> None:
        """Stop polling (a load in progress is abandoned; its thread finishes on its own)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            await self.poll()

    async def poll(self) -> list[Swap]:
        """One look at the registry; errors are logged (the models being served stay)."""
        try:
            swaps = await self.sync()
        except (DBAPIError, OSError) as exc:  # an outage: logged once, until it ends
            if not self._down:
                log.warning("cannot read the model registry (%s); serving the models loaded", exc)
            self._down = True
            return []
        except Exception:  # a bug here must not end the task
            log.exception("following the model registry failed; trying again later")
            return []
        if self._down:
            log.info("the model registry is readable again")
        self._down = False
        return swaps

    async def sync(self) -> list[Swap]:
        """Bring the served models in line with the registry; returns what changed."""
        live = await self.db.run(repo.live_versions, write=False)
        wanted = {(entry.name, entry.role): entry for entry in live}
        swaps: list[Swap] = []
        for (name, role), entry in sorted(wanted.items()):
            if self.served.get((name, role)) == entry.version:
                continue
            failed_at = self._failed.get((name, entry.version, entry.archive_sha256))
            if failed_at is not None and time.monotonic() - failed_at < RETRY_S:
                continue
            try:
                generator = await self._load(entry)
            except (BundleError, OSError) as exc:
                self._failed[(name, entry.version, entry.archive_sha256)] = time.monotonic()
                log.error("cannot load %s %s (%s): %s; serving what was", name, entry.version, role, exc)
                continue
            self._install(name, role, generator)
            self.served[(name, role)] = entry.version
            swaps.append(Swap(name, role, entry.version, "registry"))
        for name, role in [key for key in self.served if key not in wanted]:
            swaps.append(await self._fall_back(name, role))
            del self.served[(name, role)]
        if swaps:
            self._prune({self._folder(entry).name for entry in live})
        return swaps

    def _folder(self, entry: repo.Live) -> Path:
        return self.cache_dir / entry.name / f"{entry.version}-{entry.archive_sha256[:16]}"

    async def _load(self, entry: repo.Live) -> Generator:
        folder = self._folder(entry)
        if not folder.is_dir():
            fetched = await self.db.run(
                lambda s: repo.fetch_archive(s, name=entry.name, version=entry.version), write=False
            )
            if fetched is None:
                raise BundleError(f"{entry.name} {entry.version} left the registry while being fetched")
            data, sha256 = fetched
            if sha256 != entry.archive_sha256:
                raise BundleError(f"{entry.name} {entry.version}: its archive changed while being fetched")
            await asyncio.to_thread(unpack, data, sha256, folder)
            del data
        return await asyncio.to_thread(_build, folder, entry.version)

    def _install(self, name: str, role: str, generator: Generator) -> None:
        old = self.generation.generators.get(name) if role == CHAMPION else None
        self.generation.install(name, generator, role)
        self.swaps += 1
        if role == CHAMPION and self.novelty is not None:
            self.novelty.refresh(name, generator.bundle)
        was = f" (was {old.bundle.version})" if old is not None else ""
        log.info("%s %s: now serving %s%s", name, role, generator.bundle.version, was)

    async def _fall_back(self, name: str, role: str) -> Swap:
        """`name` has no registry version in `role` any more: its challenger goes; its
        champion is the MODEL_DIR bundle again, or, without one, the name goes (never the
        default model: it keeps the last version it had)."""
        if role == CHALLENGER:
            self.generation.remove(name, CHALLENGER)
            log.info("%s challenger: none any more", name)
            return Swap(name, role, None, "none")
        path = self.model_dir.get(name)
        if path is not None:
            try:
                generator = await asyncio.to_thread(_build, path)
            except (BundleError, OSError) as exc:
                log.error("%s: no champion in the registry and MODEL_DIR's bundle fails (%s)", name, exc)
            else:
                self._install(name, CHAMPION, generator)
                return Swap(name, role, generator.bundle.version, "MODEL_DIR")
        if name == self.generation.default:
            log.warning("%s: no champion in the registry nor in MODEL_DIR; keeping the last one", name)
            return Swap(name, role, self.generation.info(name).version, "none")
        self.generation.remove(name, CHAMPION)
        log.info("%s: no champion in the registry nor in MODEL_DIR: no longer served", name)
        return Swap(name, role, None, "none")

    def _prune(self, live_folders: set[str]) -> None:
        """Delete cached versions no longer live, once old enough that no other process of this
        host can still be loading them (rolled-back versions are fetched again if needed)."""
        if not self.cache_dir.is_dir():
            return
        cutoff = time.time() - PRUNE_AFTER_S
        for folder in self.cache_dir.glob("*/*"):
            if folder.name in live_folders or not folder.is_dir():
                continue
            with contextlib.suppress(OSError):
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
