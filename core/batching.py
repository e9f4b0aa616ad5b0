"""Continuous batching: requests join a running batch between steps and leave when done.

`Generator.generate` runs a fixed batch to the end of its longest request. A server instead
keeps one `RunningBatch` per model: a new request is primed on its own and appended as a row,
every `step` draws one token per row, and a row that has drawn all its tokens leaves at once,
so a 20-token request never waits for a 2000-token one. Each row draws from its own rng exactly
as in `Generator.generate`, and up to `KERNEL_MAX_ROWS` rows every row's numbers are bit-identical
to running it alone, so a request's text does not depend on who else was in the batch.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.constraints import Row
from core.generator import F32, Generator, Request, Sample, draw_tokens, filter_groups
from core.sampling import check_top_k, check_top_p
from core.tokenizers import Encoded


@dataclass
class _Row:
    tag: int
    request: Request
    seed: Encoded
    rng: np.random.Generator
    group: tuple[int | None, float | None]
    started: float
    ids: list[int] = field(default_factory=list)


class RunningBatch:
    """The rows one model is generating now; not thread-safe (one worker thread drives it)."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator
        self._rows: list[_Row] = []
        self._state = generator._zero_state(0)
        self._logits: F32 = np.zeros((0, generator.tokenizer.vocab_size), dtype=np.float32)
        self.seconds_a_step = 0.0  # how long the last `advance` took a step (0: none yet)

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def tags(self) -> list[int]:
        """The tags of the rows still running, in row order."""
        return [row.tag for row in self._rows]

    def add(self, tag: int, request: Request) -> None:
        """Prime `request`'s seed and append it as a row (ValueError for an empty seed)."""
        self.add_many([(tag, request)])

    def add_many(self, jobs: Sequence[tuple[int, Request]]) -> None:
        """Prime several requests' seeds together (one batch through the kernel, each row exactly
        as if primed alone) and append them as rows (ValueError for an empty seed or a schedule
        that does not fit the vocabulary: none is added)."""
        if not jobs:
            return
        g = self.generator
        seeds = [g.check(request) for _, request in jobs]
        state, logits = g._prime([seed.ids[-g.window :] for seed in seeds])
        now = time.perf_counter()
        for (tag, request), seed in zip(jobs, seeds, strict=True):
            group = (check_top_k(request.top_k), check_top_p(request.top_p))
            self._rows.append(_Row(tag, request, seed, request.generator(), group, now))
        self._state = [
            (np.concatenate([h, h1]), np.concatenate([c, c1]))
            for (h, c), (h1, c1) in zip(self._state, state, strict=True)
        ]
        self._logits = np.concatenate([self._logits, logits])

    def discard(self, tags: Collection[int]) -> None:
        """Drop the rows with these tags (e.g. requests whose callers went away)."""
        if tags:
            self._select([i for i, row in enumerate(self._rows) if row.tag not in tags])

    def advance(self, most: int) -> list[tuple[int, Sample]]:
        """Draw up to `most` tokens for every row, stopping when a row finishes; return (tag,
        sample) for each row that did. Rows of temperature alone run their steps in one C call
        (`Generator._run_plain`: the same tokens as `step` after `step`)."""
        rows = self._rows
        if not rows:
            return []
        if most <= 1 or not self.generator.runs_plain([row.request for row in rows]):
            return self.step()
        started = time.perf_counter()
        steps = min(most, min(row.request.length - len(row.ids) for row in rows))
        uniforms = np.empty((steps, len(rows)))
        for i, row in enumerate(rows):
            uniforms[:, i] = row.rng.random(steps)
        temps = np.array([row.request.temperature for row in rows], dtype=np.float64)
        tokens, self._logits = self.generator._run_plain(self._logits, self._state, temps, uniforms)
        for i, row in enumerate(rows):
            row.ids.extend(tokens[:, i].tolist())
        self.seconds_a_step = (time.perf_counter() - started) / steps
        return self._finish()

    def step(self) -> list[tuple[int, Sample]]:
        """Draw one token for every row; return (tag, sample) for each row that just finished."""
        rows = self._rows
        if not rows:
            return []
        # One uniform per row per token, as in Generator.iter_batch: the same rng stream.
        uniforms = np.array([row.rng.random() for row in rows])
        temps = np.array([row.request.temperature for row in rows], dtype=np.float64)
        groups = filter_groups([row.group for row in rows])
        constraints: list[Row] = []
        if any(row.request.schedule is not None for row in rows):
            constraints = [(row.request.schedule, len(row.ids)) for row in rows]
        tokens = draw_tokens(self._logits, temps, uniforms, groups, constraints)
        for i, row in enumerate(rows):
            row.ids.append(int(tokens[i]))
        keep = [i for i, row in enumerate(rows) if len(row.ids) < row.request.length]
        done = self._finish()
        if self._rows:
            self._logits = self.generator._step_logits(tokens[keep], self._state)
        return done

    def _finish(self) -> list[tuple[int, Sample]]:
        """Make the samples of the rows that have all their tokens and drop those rows."""
        done: list[tuple[int, Sample]] = []
        keep: list[int] = []
        now = time.perf_counter()
        for i, row in enumerate(self._rows):
            if len(row.ids) >= row.request.length:
                sample = self.generator.make_sample(row.request, row.ids, row.seed, now - row.started)
                done.append((row.tag, sample))
            else:
                keep.append(i)
        if done:
            self._select(keep)
        return done

    def _select(self, keep: list[int]) -> None:
        if len(keep) == len(self._rows):
            return
        self._rows = [self._rows[i] for i in keep]
        self._state = [(h[keep], c[keep]) for h, c in self._state]
        self._logits = self._logits[keep]
