"""The fast generator: the bundle's LSTM, one step per token, many requests at once.

The book's loop re-encodes a 60-character window and calls `model.predict` for every new
character, so each character costs a whole 60-step forward pass plus Keras overhead. Here the
LSTM state (h, c) is carried from step to step, so each new token costs one step, and a batch
of independent requests (each with its own seed, temperature, length and rng) advances
together through one matrix product per layer: int8 weights and 7-bit activations in the C
kernel of core/qkernel.c (core/numba_kernel.py explains the grid). No TensorFlow is imported.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from core.bundle import Bundle, load_bundle
from core.constraints import Row, Schedule, constrain, force
from core.limits import MAX_LENGTH
from core.lstm_step import KERNEL, draw_plain, lstm_layer, qmatmul, run_steps, whole_step
from core.packed import int8_weights, pack, stacked_kernel
from core.quant import QuantMatrix, on_grid
from core.sampling import GREEDY_BELOW, check_temperature, check_top_k, check_top_p, draw
from core.tokenizers import UNKNOWN_ID, Encoded

F32 = npt.NDArray[np.float32]
Precision = Literal["int8", "float32"]


@dataclass(frozen=True)
class Request:
    """One generation job: continue `seed` by `length` tokens at `temperature`."""

    seed: str
    length: int = 400
    temperature: float = 0.5
    top_k: int | None = None
    top_p: float | None = None
    # An int seeds a fresh numpy Generator; None draws one from OS entropy.
    rng: np.random.Generator | int | None = None
    # Per step, a forced token or the tokens allowed (core/constraints.py): e.g. an acrostic.
    schedule: Schedule | None = None

    def __post_init__(self) -> None:
        check_temperature(self.temperature)
        check_top_k(self.top_k)
        check_top_p(self.top_p)
        if isinstance(self.length, bool) or not isinstance(self.length, int):
            raise ValueError(f"length must be an integer, got {self.length!r}")
        if not 1 <= self.length <= MAX_LENGTH:
            raise ValueError(f"length must be between 1 and {MAX_LENGTH}, got {self.length}")
        if self.schedule is not None and len(self.schedule) != self.length:
            raise ValueError(f"the schedule covers {len(self.schedule)} steps, the length is {self.length}")

    def generator(self) -> np.random.Generator:
        """The rng this request draws from: the one it carries, or a new one from its seed."""
        return self.rng if isinstance(self.rng, np.random.Generator) else np.random.default_rng(self.rng)


@dataclass
class Sample:
    """What a request produced: the continuation (without the seed) and how it was made."""

    request: Request
    text: str
    token_ids: list[int]
    unknown: int  # seed tokens the vocabulary did not know (fed as the unknown token)
    context_tokens: int  # seed tokens actually fed (the last `window` of them)
    seed_tokens: int = 0  # tokens in the whole seed
    seconds: float = 0.0
    pieces: list[str] = field(default_factory=list, repr=False)
    # The bundle version that drew it: with hot reload the version a request was resolved
    # against may be replaced before it runs, so what is stored comes from here.
    model_version: str = ""


def _gate_constants(units: int) -> tuple[F32, F32, F32]:
    """Scale/offset vectors that turn one tanh over all four gates into sigmoid/tanh.

    Keras orders gates i, f, c, o; sigmoid(x) = 0.5 * tanh(x / 2) + 0.5, so one tanh call on
    z * pre covers all four, then * post + offset restores the sigmoids.
    """
    half = np.full(units, 0.5, dtype=np.float32)
    one = np.ones(units, dtype=np.float32)
    zero = np.zeros(units, dtype=np.float32)
    pre = np.concatenate([half, half, one, half])
    post = np.concatenate([half, half, one, half])
    offset = np.concatenate([half, half, zero, half])
    return pre, post, offset


Groups = list[tuple[int | None, float | None, npt.NDArray[np.int64]]]


def filter_groups(filters: Sequence[tuple[int | None, float | None]]) -> Groups:
    """Rows that share (top_k, top_p) settings, to be drawn together; [] when no row uses either."""
    groups: dict[tuple[int | None, float | None], list[int]] = {}
    for row, key in enumerate(filters):
        groups.setdefault(key, []).append(row)
    if list(groups) in ([], [(None, None)]):
        return []
    return [(k, p, np.array(rows, dtype=np.int64)) for (k, p), rows in groups.items()]


def draw_tokens(
    logits: F32,
    temps: npt.NDArray[np.float64],
    uniforms: npt.NDArray[np.float64],
    groups: Groups,
    constraints: Sequence[Row] = (),
) -> npt.NDArray[np.int64]:
    """One token per row of `logits`; the unknown token is never written (it decodes to a
    replacement mark, not text). Temperature alone takes the compiled path. `constraints`, one
    (schedule, step) per row when any row has a schedule, masks and forces tokens."""
    if constraints:
        return force(_draw(constrain(logits, constraints), temps, uniforms, groups), constraints)
    return _draw(logits, temps, uniforms, groups)


def _draw(
    logits: F32, temps: npt.NDArray[np.float64], uniforms: npt.NDArray[np.float64], groups: Groups
) -> npt.NDArray[np.int64]:
    if not groups:
        return draw_plain(np.ascontiguousarray(logits, dtype=np.float32), temps, uniforms, UNKNOWN_ID)  # type: ignore[no-any-return]
    z = logits.astype(np.float64)
    z[:, UNKNOWN_ID] = -np.inf
    tokens = np.zeros(len(z), dtype=np.int64)
    for top_k, top_p, rows in groups:
        tokens[rows] = draw(z[rows], temps[rows], uniforms[rows], top_k=top_k, top_p=top_p)
    return tokens


# Up to this many rows the int8 kernel steps the batch (bit-identical to one row at a time); a
# bigger batch (held-out evaluation) goes to OpenBLAS's float32 product. Both compute the same
# quantised model (int8 weights, inputs on the 7-bit grid): the kernel exactly, BLAS up to float32
# rounding (~1e-6). The C kernel beats BLAS at every batch size measured (bench/generate.py); the
# numba fallback only up to ~16 rows.
KERNEL_MAX_ROWS = 64 if KERNEL.startswith("C") else 16
STREAM_CHUNK = 16  # tokens `Generator.stream` draws a C call


@dataclass
class _Layer:
    """One LSTM layer: its product as int8 rows, and the same weights as float32 for BLAS."""

    units: int
    matrix: QuantMatrix  # layer 0: recurrent kernel only; above: [input kernel; recurrent kernel]
    table: F32  # added after the product: layer 0's per-token table, else the bias as one row
    kernel: F32 | None = None  # the trained float32 weights, kept for precision="float32" only

    @cached_property
    def dense(self) -> F32:
        """The float32 (inputs, 4 * units) weights BLAS multiplies: `matrix.dequantized()` (or the
        trained ones), made on first use. Only batches above KERNEL_MAX_ROWS (held-out evaluation)
        use them; a server never does, and saves the memory (~20 MB for the shipped models)."""
        return self.kernel if self.kernel is not None else self.matrix.dequantized()


class Generator:
    """Holds a bundle's weights as arrays and generates text for batches of requests."""

    def __init__(
        self, bundle: Bundle, *, precision: Precision = "int8", cache_dir: Path | None = None
    ) -> None:
        """`precision`: "int8" (served: int8 weights, kernel) or "float32" (the trained weights,
        BLAS only: the reference that held-out parity is measured against). `cache_dir`: where
        the int8 weights and layer 0's token table are kept between starts (core/packed.py)."""
        if precision not in ("int8", "float32"):
            raise ValueError(f"precision must be 'int8' or 'float32', got {precision!r}")
        self.precision: Precision = precision
        self._quantized = precision == "int8"
        self.bundle = bundle
        self.tokenizer = bundle.tokenizer
        self.window = bundle.model.window
        w = bundle.weights
        units = bundle.model.lstm_units
        # Layer 0's input product is a row lookup: the embedding (or the one-hot identity) and
        # the bias folded into one table of shape (vocab, 4 * units), in float32 (exact). The
        # int8 weights come from the cache when packed before (the float32 ones are then never
        # read); the float32 reference packs afresh and keeps the trained kernels beside.
        weights = int8_weights(bundle, cache_dir) if self._quantized else pack(bundle, cache_dir)
        self._layers = [
            _Layer(
                units[i],
                weights.matrices[i],
                weights.tables[i],
                None if self._quantized else np.ascontiguousarray(stacked_kernel(w, i), dtype=np.float32),
            )
            for i in range(len(units))
        ]
        self._gates = [_gate_constants(layer.units) for layer in self._layers]
        self._dense = weights.dense
        self._dense_kernel = None if self._quantized else w["dense/kernel"].astype(np.float32)
        self._dense_bias: F32 = weights.dense_bias

    @cached_property
    def _dense_f32(self) -> F32:
        """The output layer's float32 weights for BLAS, made on first use (see `_Layer.dense`)."""
        return self._dense_kernel if self._dense_kernel is not None else self._dense.dequantized()

    @classmethod
    def from_path(cls, path: str) -> Generator:
        """Load a bundle folder and build its generator."""
        return cls(load_bundle(path))

    # -- the recurrent step ------------------------------------------------------------------

    def _zero_state(self, batch: int) -> list[tuple[F32, F32]]:
        return [
            (np.zeros((batch, layer.units), np.float32), np.zeros((batch, layer.units), np.float32))
            for layer in self._layers
        ]

    def _step(self, tokens: npt.NDArray[np.int64], state: list[tuple[F32, F32]]) -> F32:
        """Feed one token per row, update `state` in place, return the top layer's h."""
        if self._quantized and len(tokens) <= KERNEL_MAX_ROWS:
            return self._kernel_step(tokens, state)
        below: F32 | None = None
        zeros = np.zeros(len(tokens), dtype=np.int64)
        for i, layer in enumerate(self._layers):
            h, c = state[i]
            x = h if below is None else np.concatenate([below, h], axis=1)
            index = tokens if below is None else zeros
            z = self._grid(x, layer.matrix) @ layer.dense + layer.table[index]
            pre, post, offset = self._gates[i]
            g = np.tanh(z * pre) * post + offset
            n = layer.units
            c = g[:, n : 2 * n] * c + g[:, :n] * g[:, 2 * n : 3 * n]
            h = g[:, 3 * n :] * np.tanh(c)
            state[i] = (h, c)
            below = h
        assert below is not None
        return below

    def _kernel_step(self, tokens: npt.NDArray[np.int64], state: list[tuple[F32, F32]]) -> F32:
        """`_step` through the compiled kernel: one call per layer does the product and the gates."""
        below = np.empty((len(tokens), 0), dtype=np.float32)
        index, above_first = tokens, np.zeros(len(tokens), dtype=np.int64)
        for i, layer in enumerate(self._layers):
            h, c = state[i]
            state[i] = lstm_layer(layer.matrix, below, h, c, layer.table, index)
            below = state[i][0]
            index = above_first  # layers above the first add their one bias row
        return below

    def _step_logits(self, tokens: npt.NDArray[np.int64], state: list[tuple[F32, F32]]) -> F32:
        """`_logits(_step(tokens, state))`: with the C kernel, in one call (at batch 1 the Python
        between the products was ~20% of a step); the same bytes either way."""
        if whole_step is None or not self._quantized or len(tokens) > KERNEL_MAX_ROWS:
            return self._logits(self._step(tokens, state))
        c_ = np.ascontiguousarray
        fresh = [(np.empty_like(c), np.empty_like(c)) for _, c in state]
        layers = [
            (layer.matrix.packed, layer.matrix.scale, layer.matrix.corr, layer.table, c_(h), c_(c), *fresh[i])
            for i, (layer, (h, c)) in enumerate(zip(self._layers, state, strict=True))
        ]
        dense = self._dense
        logits = np.empty((len(tokens), dense.outputs), dtype=np.float32)
        bias = self._dense_bias
        whole_step(c_(tokens, dtype=np.int64), layers, (dense.packed, dense.scale, dense.corr, bias), logits)
        state[:] = fresh
        return logits

    def runs_plain(self, requests: Sequence[Request]) -> bool:
        """Whether these rows may go through `_run_plain`: temperature alone (no top-k, top-p or
        schedule), the C kernel, a batch it steps."""
        return (
            run_steps is not None
            and self._quantized
            and len(requests) <= KERNEL_MAX_ROWS
            and all(r.top_k is None and r.top_p is None and r.schedule is None for r in requests)
        )

    def _run_plain(
        self,
        logits: F32,
        state: list[tuple[F32, F32]],
        temps: npt.NDArray[np.float64],
        uniforms: npt.NDArray[np.float64],
    ) -> tuple[npt.NDArray[np.int64], F32]:
        """`len(uniforms)` steps in one C call: each draws one token per row from the logits with
        that step's uniforms (`draw_tokens` with temperature alone), then steps on it
        (`_step_logits`); the same tokens, state and logits as those two step by step. `state`
        is updated in place; returns the tokens (steps, rows) and the last step's logits."""
        assert run_steps is not None
        steps, rows = uniforms.shape
        tokens = np.empty((steps, rows), dtype=np.int64)
        logits = np.array(logits, dtype=np.float32, order="C")  # written in place
        ins = [
            (np.array(h, dtype=np.float32, order="C"), np.array(c, dtype=np.float32, order="C"))
            for h, c in state
        ]
        outs = [(np.empty_like(h), np.empty_like(c)) for h, c in ins]
        layers = [
            (layer.matrix.packed, layer.matrix.scale, layer.matrix.corr, layer.table, h, c, h_out, c_out)
            for layer, (h, c), (h_out, c_out) in zip(self._layers, ins, outs, strict=True)
        ]
        dense = (self._dense.packed, self._dense.scale, self._dense.corr, self._dense_bias)
        cdf = np.empty(logits.shape[1], dtype=np.float64)
        temps = np.ascontiguousarray(temps, dtype=np.float64)
        uniforms = np.ascontiguousarray(uniforms, dtype=np.float64)
        run_steps(tokens, logits, layers, dense, temps, uniforms, UNKNOWN_ID, GREEDY_BELOW, cdf)
        state[:] = outs if steps % 2 else ins  # the C loop swaps the two after every step
        return tokens, logits

    def _grid(self, x: F32, matrix: QuantMatrix) -> F32:
        return on_grid(x) if self._quantized else x

    def _logits(self, top: F32) -> F32:
        if self._quantized and len(top) <= KERNEL_MAX_ROWS:
            return qmatmul(self._dense, top, self._dense_bias, np.zeros(len(top), dtype=np.int64))
        out: F32 = self._grid(top, self._dense) @ self._dense_f32 + self._dense_bias
        return out

    def _prime(
        self, contexts: Sequence[Sequence[int]] | npt.NDArray[np.integer]
    ) -> tuple[list[tuple[F32, F32]], F32]:
        """Run every row's context from a zero state; return the state and the next logits.

        Contexts are right-aligned: a shorter row is held at the zero state until its first
        token, so each row ends exactly as if it had been run alone.
        """
        batch = len(contexts)
        if isinstance(contexts, np.ndarray):
            padded = contexts.astype(np.int64, copy=False)
            longest = padded.shape[1]
            starts = np.zeros(batch, dtype=np.int64)
        else:
            longest = max(len(ctx) for ctx in contexts)
            padded = np.zeros((batch, longest), dtype=np.int64)
            starts = np.array([longest - len(ctx) for ctx in contexts])
            for row, ctx in enumerate(contexts):
                padded[row, starts[row] :] = ctx
        state = self._zero_state(batch)
        if self._quantized and batch <= KERNEL_MAX_ROWS and longest:
            return state, self._logits(self._prime_by_layer(padded, starts, state))
        top = state[-1][0]
        for t in range(longest):
            top = self._step(padded[:, t], state)
            waiting = starts > t
            if waiting.any():
                for h, c in state:
                    h[waiting] = 0.0
                    c[waiting] = 0.0
        return state, self._logits(top)

    def _prime_by_layer(
        self, padded: npt.NDArray[np.int64], starts: npt.NDArray[np.int64], state: list[tuple[F32, F32]]
    ) -> F32:
        """`_prime`'s steps through the C kernel a layer at a time: the first layer over the whole
        context, then the next over the first's outputs, and so on, so a layer's weights stay in
        the caches from one step to the next (a step of every layer reads more than a core's L2
        holds). The rows are independent, so each gets the same state as step by step; the
        steps alternate the direction in which the weights are read (lstm_layer's `backwards`).
        Updates `state` in place; returns the top layer's h."""
        longest = padded.shape[1]
        waiting = [starts > t for t in range(longest)]
        below: list[F32] = [np.empty((len(padded), 0), dtype=np.float32)] * longest
        zeros = np.zeros(len(padded), dtype=np.int64)
        for i, layer in enumerate(self._layers):
            h, c = state[i]
            outputs: list[F32] = []
            for t in range(longest):
                index = padded[:, t] if i == 0 else zeros
                h, c = lstm_layer(layer.matrix, below[t], h, c, layer.table, index, backwards=t % 2 == 1)
                if waiting[t].any():  # a shorter row holds the zero state until its first token
                    h[waiting[t]] = 0.0
                    c[waiting[t]] = 0.0
                outputs.append(h)
            state[i] = (h, c)
            below = outputs
        return below[-1]

    # -- public API --------------------------------------------------------------------------

    def warm(self) -> None:
        """Run one step now: where numba stands in for the C kernel, its first call loads (or
        compiles) it, ~2 s that should not land on the first user's request."""
        if self._quantized:
            self._logits(self._kernel_step(np.zeros(1, dtype=np.int64), self._zero_state(1)))

    def context_ids(self, seed: str) -> tuple[list[int], int]:
        """Encode a seed and keep the last `window` ids; also return the unknown-token count."""
        encoded = self._encode(seed)
        return encoded.ids[-self.window :], encoded.unknown

    def batch_logits(self, contexts: npt.NDArray[np.integer]) -> F32:
        """Next-token logits after each row of a (batch, length) array of token ids."""
        return self._prime(contexts)[1]

    def next_token_probs(self, seed: str) -> npt.NDArray[np.float64]:
        """The model's distribution over the next token after `seed` (temperature 1)."""
        ids, _ = self.context_ids(seed)
        _, logits = self._prime([ids])
        z = logits[0].astype(np.float64)
        z -= z.max()
        p: npt.NDArray[np.float64] = np.exp(z)
        p /= p.sum()
        return p

    def encode(self, seed: str) -> Encoded:
        """Encode a seed, raising ValueError when it has no tokens."""
        return self._encode(seed)

    def check(self, request: Request) -> Encoded:
        """Encode a request's seed and check its schedule fits this vocabulary (ValueError)."""
        if request.schedule is not None:
            request.schedule.check_vocab(self.tokenizer.vocab_size)
        return self._encode(request.seed)

    def _encode(self, seed: str) -> Encoded:
        encoded = self.tokenizer.encode_counted(seed)
        if not encoded.ids:
            raise ValueError("the seed is empty: send at least one character or word")
        return encoded

    def iter_batch(
        self, requests: Sequence[Request], encoded: Sequence[Encoded] | None = None
    ) -> Iterator[list[int | None]]:
        """Yield, once per step, the token id each request drew (None once it is complete).

        `encoded` may carry the seeds already encoded (so `generate` encodes each seed once).
        """
        if not requests:
            return
        encoded = encoded or [self.check(req) for req in requests]
        contexts = [e.ids[-self.window :] for e in encoded]
        rngs = [req.generator() for req in requests]
        temps = np.array([req.temperature for req in requests], dtype=np.float64)
        lengths = np.array([req.length for req in requests])
        group_rows = filter_groups([(check_top_k(req.top_k), check_top_p(req.top_p)) for req in requests])
        constrained = any(req.schedule is not None for req in requests)

        state, logits = self._prime(contexts)
        longest = int(lengths.max())
        for step in range(longest):
            live = lengths > step
            # Each live row spends exactly one uniform per token, so batching never changes
            # which numbers a request's rng produces.
            uniforms = np.array([rngs[r].random() if live[r] else 0.0 for r in range(len(requests))])
            rows: list[Row] = []
            if constrained:
                rows = [(req.schedule if live[r] else None, step) for r, req in enumerate(requests)]
            tokens = draw_tokens(logits, temps, uniforms, group_rows, rows)
            yield [int(tokens[r]) if live[r] else None for r in range(len(requests))]
            if step + 1 < longest:
                logits = self._step_logits(tokens, state)

    def forced_logits(
        self, contexts: Sequence[Sequence[int]], tokens: npt.NDArray[np.int64]
    ) -> Iterator[F32]:
        """Teacher forcing: for each column t of `tokens` (rows, steps), the logits the model
        gives before token t, every row primed with its context first (as a sample's seed is).
        Scores texts already written (train/lesson.py), with the served weights."""
        state, logits = self._prime(contexts)
        for t in range(tokens.shape[1]):
            yield logits
            if t + 1 < tokens.shape[1]:
                logits = self._step_logits(np.ascontiguousarray(tokens[:, t]), state)

    def generate(self, requests: Sequence[Request]) -> list[Sample]:
        """Generate every request of a batch together; results come back in request order."""
        started = time.perf_counter()
        encoded = [self.check(req) for req in requests]
        ids: list[list[int]] = [[] for _ in requests]
        if requests and self.runs_plain(requests):
            ids = self._generate_plain(requests, encoded)
        else:
            for step_tokens in self.iter_batch(requests, encoded):
                for row, token in enumerate(step_tokens):
                    if token is not None:
                        ids[row].append(token)
        seconds = time.perf_counter() - started
        return [
            self.make_sample(req, row_ids, seed, seconds)
            for req, row_ids, seed in zip(requests, ids, encoded, strict=True)
        ]

    def _generate_plain(self, requests: Sequence[Request], encoded: Sequence[Encoded]) -> list[list[int]]:
        """`iter_batch` run to the end through `_run_plain`, from one row's end to the next: the
        same tokens (each live row spends one uniform per token, drawn ahead: `rng.random(k)`
        gives the numbers k calls of `rng.random()` would; a finished row draws on 0.0, unused)."""
        rngs = [req.generator() for req in requests]
        temps = np.array([req.temperature for req in requests], dtype=np.float64)
        lengths = np.array([req.length for req in requests])
        state, logits = self._prime([e.ids[-self.window :] for e in encoded])
        ids: list[list[int]] = [[] for _ in requests]
        done, longest = 0, int(lengths.max())
        while done < longest:
            live = np.flatnonzero(lengths > done)
            steps = int(lengths[live].min()) - done
            uniforms = np.zeros((steps, len(requests)))
            for row in live:
                uniforms[:, row] = rngs[row].random(steps)
            tokens, logits = self._run_plain(logits, state, temps, uniforms)
            for row in live:
                ids[row].extend(tokens[:, row].tolist())
            done += steps
        return ids

    def make_sample(self, request: Request, ids: list[int], seed: Encoded, seconds: float) -> Sample:
        """The Sample for a request's drawn ids."""
        pieces = [self.tokenizer.tokens[i] for i in ids]
        return Sample(
            request=request,
            text="".join(pieces),
            token_ids=ids,
            unknown=seed.unknown,
            context_tokens=min(len(seed.ids), self.window),
            seed_tokens=len(seed.ids),
            seconds=seconds,
            pieces=pieces,
            model_version=self.bundle.version,
        )

    def generate_one(self, request: Request) -> Sample:
        """Generate a single request."""
        return self.generate([request])[0]

    def stream(self, request: Request) -> Iterator[str]:
        """Yield the text of each new token as soon as it is drawn: a temperature-only request
        STREAM_CHUNK tokens at a time, one C call each (`_run_plain`, about a millisecond), so
        a consumer that stops early may leave an rng it passed up to STREAM_CHUNK - 1 numbers
        further on than the tokens it took."""
        if not self.runs_plain([request]):
            for (token,) in self.iter_batch([request]):
                if token is not None:
                    yield self.tokenizer.tokens[token]
            return
        encoded = self.check(request)
        rng = request.generator()
        temps = np.array([request.temperature], dtype=np.float64)
        state, logits = self._prime([encoded.ids[-self.window :]])
        for done in range(0, request.length, STREAM_CHUNK):
            steps = min(STREAM_CHUNK, request.length - done)
            tokens, logits = self._run_plain(logits, state, temps, rng.random(steps)[:, None])
            for token in tokens[:, 0].tolist():
                yield self.tokenizer.tokens[token]
