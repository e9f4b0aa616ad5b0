"""Generation speed on the shipped weights: ours beside the baselines and peer libraries.

    python -m bench.generate [--runs 7] [--book-chars 40] [--model models/nietzsche-char]

Every figure comes from this one process, on the same weights, one after another, so a busy
machine slows them all alike; ratios are against the float32 numpy loop (the previous serving
path) measured here too. The BLAS/threads settings in force are printed first.

  ours int8           core.Generator: int8 weights, the C kernel (core/qkernel.c) on 1 and 2 threads;
                      the note says which product path each figure ran (1 x 400 / 64 x 400):
                      AMX tiles for batches of 8 rows and more where the CPU has them
                      (LSTMBOT_QKERNEL_ISA=3 keeps to AVX-512 VNNI), else VNNI or AVX2
  numpy float32       core.Generator(precision="float32"): the same loop with float32 BLAS
  PyTorch             nn.LSTM stepped one token at a time carrying (h, c), inference_mode
  ONNX Runtime        a one-step graph (Gather, LSTM op per layer, MatMul+Add) carrying (h, c),
                      float32 and int8 (quantize_dynamic, QInt8 weights), 1 intra-op thread
  numpy window        same maths, no state carried: each token re-runs the whole 60-token window
  book loop           model.predict on the re-encoded window per character (TensorFlow)
  book model direct   model(x, training=False) per character (TensorFlow, no predict overhead)
  book loop x64       the book's loop over 64 requests at once, one predict per step

Peers come from the `bench` extra (`make bench` installs it); a missing one prints a note.
TensorFlow figures are timed on --book-chars characters and scaled to 400 (they are slow).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
SEED = "the will to truth, which is to tempt us to many a hazardous e"  # 60 characters
LENGTH = 400
BATCH = 64


def blas_settings() -> list[str]:
    """The thread pools and kernels numpy (and numba) will use, and the OpenBLAS env overrides."""
    import numba
    from threadpoolctl import threadpool_info

    lines = [f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"]
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        lines.append(f"{var}={os.environ.get(var, '(unset)')}")
    for pool in threadpool_info():
        lines.append(
            f"threadpoolctl: {pool.get('internal_api')} {pool.get('version')} "
            f"threads={pool.get('num_threads')} kernel={pool.get('architecture')} ({pool.get('prefix')})"
        )
    lines.append(
        f"numba {numba.__version__}: threading layer {getattr(numba.config, 'THREADING_LAYER', '?')}"
    )
    from core.lstm_step import KERNEL, threads

    lines.append(f"int8 product: {KERNEL}; threads for big products: {threads()}")
    try:
        from core.c_kernel import AMX_STATE
    except ImportError:
        AMX_STATE = "(the C kernel was not built)"
    lines.append(f"AMX tiles: {AMX_STATE} (LSTMBOT_QKERNEL_ISA=3 keeps to AVX-512 VNNI)")
    return lines


def path_ran(tile_calls: int) -> str:
    """The product's path in a timed run: AMX if it used the tiles, else the kernel's other one."""
    from core.lstm_step import KERNEL

    if tile_calls:
        return "AMX"
    return "AVX-512 VNNI" if "AMX" in KERNEL else KERNEL.removeprefix("C, ")


def best_and_median(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Fastest and median wall time of `runs` calls (the fastest is the least disturbed)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


class Table:
    """Rows of (name, one-sample ms, batched chars/s) printed with ratios to the baseline."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float | None, float | None, str]] = []

    def add(self, name: str, one_s: float | None, chars_per_s: float | None, note: str = "") -> None:
        self.rows.append((name, one_s, chars_per_s, note))

    def print(self, baseline: str) -> None:
        base = next(r for r in self.rows if r[0] == baseline)
        print(f"{'':<34}{'1 x 400 chars':>16}{'vs base':>9}{'64 x 400, chars/s':>20}{'vs base':>9}")
        for name, one, rate, note in self.rows:
            one_txt = f"{one * 1000:>13.1f} ms" if one is not None else f"{'-':>16}"
            one_ratio = f"{base[1] / one:>8.2f}x" if one and base[1] else f"{'':>9}"
            rate_txt = f"{rate:>20,.0f}" if rate is not None else f"{'-':>20}"
            rate_ratio = f"{rate / base[2]:>8.2f}x" if rate and base[2] else f"{'':>9}"
            print(f"{name:<34}{one_txt}{one_ratio}{rate_txt}{rate_ratio}  {note}")


def bench_ours(bundle: object, table: Table, runs: int) -> None:
    """Our generator: the int8 kernel on 1 and 2 threads, and the float32 numpy baseline."""
    from threadpoolctl import threadpool_limits

    from core import lstm_step
    from core.generator import Generator, Request

    one = Request(SEED, length=LENGTH, temperature=0.5, rng=1)
    batch = [Request(SEED, length=LENGTH, temperature=0.5, rng=i) for i in range(BATCH)]
    cases: list[tuple[str, Generator, int]] = [
        ("numpy float32 (baseline)", Generator(bundle, precision="float32"), 1),  # type: ignore[arg-type]
        ("ours int8, 1 thread", Generator(bundle), 1),  # type: ignore[arg-type]
        ("ours int8, 2 threads", Generator(bundle), 2),  # type: ignore[arg-type]
    ]
    before = lstm_step.threads()
    try:
        for name, generator, threads in cases:
            # `threads` bounds both the kernel's helper thread and BLAS (the float32 baseline).
            lstm_step.threads(threads)
            with threadpool_limits(limits=threads, user_api="blas"):
                generator.generate_one(Request(SEED, length=5, rng=0))  # compile / warm up
                tiles = lstm_step.tile_calls()
                best, median = best_and_median(partial(generator.generate_one, one), runs)
                tiles, one_tiles = lstm_step.tile_calls(), lstm_step.tile_calls() - tiles
                batch_best, _ = best_and_median(partial(generator.generate, batch), max(2, runs // 3))
                batch_tiles = lstm_step.tile_calls() - tiles
            note = f"(1 x 400 median {median * 1000:.0f} ms"
            if "int8" in name:  # which product path each figure ran
                note += f"; ran {path_ran(one_tiles)} / {path_ran(batch_tiles)}"
            table.add(name, best, BATCH * LENGTH / batch_best, note + ")")
    finally:
        lstm_step.threads(before)


def l2_bytes() -> int | None:
    """This core's L2 cache size (Linux sysfs), or None where it cannot be read."""
    try:
        size = Path("/sys/devices/system/cpu/cpu0/cache/index2/size").read_text().strip()
    except OSError:
        return None
    scale = {"K": 1 << 10, "M": 1 << 20}.get(size[-1:], 1)
    return int(size.rstrip("KM")) * scale


def product_floor(bundle: object, runs: int) -> str:
    """Where a lone 1 x 400 ends on this CPU: the int8 products of one step at batch 1, in the
    order generation reads them (core/qpython.c, "steps in rounds": the first layer's weights
    for the next step, then the upper layers', then backwards in the other order), times the
    steps of a 1 x 400 (its seed's and its own); beside it the same products read in one order
    at every step, as step-by-step generation did (where the weights outgrow L2, each step
    then streams them all from L3)."""
    from core import lstm_step
    from core.generator import Generator
    from core.quant import F32, QuantMatrix

    generator = Generator(bundle)  # type: ignore[arg-type]
    products = [(layer.matrix, layer.table) for layer in generator._layers]
    products.append((generator._dense, generator._dense_bias))
    inputs = [np.zeros((1, m.inputs), np.float32) for m, _ in products]
    zero = np.zeros(1, dtype=np.int64)
    lstm_step.threads(1)
    calls = [(matrix, x, table) for (matrix, table), x in zip(products, inputs, strict=True)]
    first, rest = calls[:1], calls[1:]

    def read(order: list[tuple[QuantMatrix, F32, F32]], backwards: bool) -> None:
        for matrix, x, table in order:
            lstm_step.qmatmul(matrix, x, table, zero, backwards)

    def in_one_order() -> None:
        for _ in range(200):
            read(first + rest, False)

    def in_rounds() -> None:
        for _ in range(100):
            read(first + rest, False)
            read(rest + first, True)

    per_step = [best_and_median(steps, runs)[0] / 200 for steps in (in_rounds, in_one_order)]
    weights = sum(m.packed.nbytes for m, _ in products)
    l2 = l2_bytes()
    cache = f"this core's L2: {l2 / 2**20:.1f} MB" if l2 else "L2 size unknown"
    rounds, one_order = per_step
    return (
        f"1 x 400 floor on this CPU: the products alone, {rounds * 1e6:.0f} us a step read in rounds x "
        f"{LENGTH} = {LENGTH * rounds * 1000:.1f} ms (the seed's steps go a layer at a time); "
        f"{one_order * 1e6:.0f} us read in one order at every step ({weights / 2**20:.1f} MB of int8 "
        f"weights at {weights / one_order / 1e9:.0f} GB/s; {cache})"
    )


def bench_window(bundle: object, table: Table) -> None:
    """Same maths without carried state: every token re-runs the whole window (float32 numpy)."""
    from core.generator import Generator
    from core.sampling import sample

    generator = Generator(bundle, precision="float32")  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    chars = 40

    def run() -> None:
        ids = list(generator.context_ids(SEED)[0])
        for _ in range(chars):
            logits = generator.batch_logits(np.array([ids[-generator.window :]]))[0]
            ids.append(sample(logits, 0.5, rng))

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        best, _ = best_and_median(run, 2)
    table.add("numpy window (no state)", best * LENGTH / chars, None, f"(timed on {chars} chars)")


def bench_torch(bundle: object, table: Table, runs: int) -> None:
    """PyTorch nn.LSTM stepping one token at a time, carrying (h, c), under inference_mode."""
    try:
        import torch
    except ImportError:
        table.add("PyTorch nn.LSTM", None, None, "(skipped: torch not installed; `make bench` installs it)")
        return
    from core.bundle import Bundle

    assert isinstance(bundle, Bundle)
    w = bundle.weights
    units = bundle.model.lstm_units
    torch.set_num_threads(1)
    emb = torch.nn.Embedding.from_pretrained(  # type: ignore[no-untyped-call]
        torch.from_numpy(w["embedding/embeddings"])
    )
    lstm = torch.nn.LSTM(
        w["embedding/embeddings"].shape[1], units[0], num_layers=len(units), batch_first=True
    )
    with torch.no_grad():
        for i in range(len(units)):  # Keras and PyTorch share the gate order i, f, g, o
            getattr(lstm, f"weight_ih_l{i}").copy_(torch.from_numpy(w[f"lstm_{i}/kernel"].T.copy()))
            getattr(lstm, f"weight_hh_l{i}").copy_(torch.from_numpy(w[f"lstm_{i}/recurrent_kernel"].T.copy()))
            getattr(lstm, f"bias_ih_l{i}").copy_(torch.from_numpy(w[f"lstm_{i}/bias"]))
            getattr(lstm, f"bias_hh_l{i}").zero_()
    dense = torch.nn.Linear(units[-1], bundle.model.vocab_size)
    with torch.no_grad():
        dense.weight.copy_(torch.from_numpy(w["dense/kernel"].T.copy()))
        dense.bias.copy_(torch.from_numpy(w["dense/bias"]))
    seed_ids = torch.tensor([bundle.tokenizer.encode(SEED)[-bundle.model.window :]])
    gen = torch.Generator().manual_seed(0)

    def run(rows: int) -> None:
        with torch.inference_mode():
            out, state = lstm(emb(seed_ids.expand(rows, -1)))
            logits = dense(out[:, -1])
            for _ in range(LENGTH):
                token = torch.multinomial(torch.softmax(logits / 0.5, dim=-1), 1, generator=gen)
                out, state = lstm(emb(token), state)
                logits = dense(out[:, -1])

    run(1)
    best, _ = best_and_median(lambda: run(1), runs)
    batch_best, _ = best_and_median(lambda: run(BATCH), 2)
    table.add(f"PyTorch {torch.__version__} nn.LSTM", best, BATCH * LENGTH / batch_best, "(1 thread)")


def _keras_to_onnx_gates(matrix: np.ndarray, units: int) -> np.ndarray:
    """Reorder the gate blocks on the last axis from Keras's i, f, c, o to ONNX's i, o, f, c."""
    i, f, c, o = (matrix[..., k * units : (k + 1) * units] for k in range(4))
    return np.ascontiguousarray(np.concatenate([i, o, f, c], axis=-1), dtype=np.float32)


def _onnx_step_model(bundle: object) -> object:
    """One generation step as an ONNX graph, carrying the state through inputs and outputs.

    Inputs: `tokens` (batch,) int64 and `h{i}`, `c{i}` (1, batch, n) per layer; outputs: `logits`
    (batch, vocab) and the new `h{i}_out`, `c{i}_out`. Embedding Gather, the ONNX LSTM op per
    layer (sequence length 1), then the dense MatMul + Add.
    """
    from onnx import TensorProto, helper, numpy_helper

    from core.bundle import Bundle

    assert isinstance(bundle, Bundle)
    w = bundle.weights
    units = bundle.model.lstm_units
    vocab = bundle.model.vocab_size
    init = [
        numpy_helper.from_array(np.asarray(w["embedding/embeddings"], np.float32), "embedding"),
        numpy_helper.from_array(np.array([0], np.int64), "axis0"),
        numpy_helper.from_array(np.asarray(w["dense/kernel"], np.float32), "dense_kernel"),
        numpy_helper.from_array(np.asarray(w["dense/bias"], np.float32), "dense_bias"),
    ]
    nodes = [
        helper.make_node("Gather", ["embedding", "tokens"], ["embedded"], axis=0),
        helper.make_node("Unsqueeze", ["embedded", "axis0"], ["x0"]),  # (seq=1, batch, emb)
    ]
    inputs = [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch"])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", vocab])]
    x = "x0"
    for i, n in enumerate(units):
        kernel = _keras_to_onnx_gates(w[f"lstm_{i}/kernel"], n)  # (in, 4n)
        recurrent = _keras_to_onnx_gates(w[f"lstm_{i}/recurrent_kernel"], n)  # (n, 4n)
        bias = _keras_to_onnx_gates(w[f"lstm_{i}/bias"], n)  # (4n,)
        # Keras has one bias; ONNX adds Wb and Rb, so Rb is zero.
        init += [
            numpy_helper.from_array(kernel.T[None].copy(), f"W{i}"),  # (1, 4n, in)
            numpy_helper.from_array(recurrent.T[None].copy(), f"R{i}"),  # (1, 4n, n)
            numpy_helper.from_array(np.concatenate([bias, np.zeros_like(bias)])[None], f"B{i}"),
        ]
        for name in (f"h{i}", f"c{i}"):
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, "batch", n]))
            outputs.append(helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [1, "batch", n]))
        nodes.append(
            helper.make_node(
                "LSTM",
                [x, f"W{i}", f"R{i}", f"B{i}", "", f"h{i}", f"c{i}"],
                ["", f"h{i}_out", f"c{i}_out"],
                hidden_size=n,
            )
        )
        x = f"h{i}_out"  # Y_h (1, batch, n) is the next layer's one-step sequence
    nodes += [
        helper.make_node("Squeeze", [x, "axis0"], ["top"]),
        helper.make_node("MatMul", ["top", "dense_kernel"], ["scores"]),
        helper.make_node("Add", ["scores", "dense_bias"], ["logits"]),
    ]
    graph = helper.make_graph(nodes, "lstm_step", inputs, outputs, init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what opset 17 needs; older than the onnx package's default
    import onnx

    onnx.checker.check_model(model)
    return model


def bench_onnx(bundle: object, table: Table, runs: int) -> None:
    """ONNX Runtime stepping one token at a time (state carried as graph inputs/outputs), float32
    and int8 by dynamic quantization; the float32 logits are checked against ours first."""
    try:
        import onnx
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        note = "(skipped: onnxruntime not installed; `make bench` installs it)"
        table.add("ONNX Runtime", None, None, note)
        return
    import tempfile

    from core.bundle import Bundle
    from core.generator import Generator

    assert isinstance(bundle, Bundle)
    units = bundle.model.lstm_units
    seed_ids = np.array(bundle.tokenizer.encode(SEED)[-bundle.model.window :], dtype=np.int64)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    with tempfile.TemporaryDirectory() as tmp:
        float_path, int8_path = Path(tmp) / "step.onnx", Path(tmp) / "step.int8.onnx"
        onnx.save(_onnx_step_model(bundle), float_path)  # type: ignore[arg-type]
        # quantize_dynamic logs a plea for its pre-processing (shape inference, graph optimisation);
        # on this small, fully declared graph that pre-processing yields the same quantized ops
        # (checked with onnxruntime 1.32), so the plea is muted rather than printed in the table.
        import logging

        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            quantize_dynamic(float_path, int8_path, weight_type=QuantType.QInt8)
        finally:
            logging.disable(previous)
        sessions = {
            label: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            for label, path in (("float32", float_path), ("int8 (dynamic)", int8_path))
        }
    rng = np.random.default_rng(0)

    def prime(session: object, rows: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Step the seed from a zero state; return the next logits and the state."""
        state = {
            f"{kind}{i}": np.zeros((1, rows, n), np.float32) for i, n in enumerate(units) for kind in "hc"
        }
        logits = np.empty(0, np.float32)
        for token in seed_ids:
            logits, state = step(session, np.full(rows, token, np.int64), state)
        return logits, state

    def step(
        session: object, tokens: np.ndarray, state: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        out = session.run(None, {"tokens": tokens, **state})  # type: ignore[attr-defined]
        names = [f"{kind}{i}" for i in range(len(units)) for kind in "hc"]
        return out[0], dict(zip(names, out[1:], strict=True))

    def run(session: object, rows: int) -> None:
        logits, state = prime(session, rows)
        for _ in range(LENGTH):
            z = logits.astype(np.float64) / 0.5
            p = np.exp(z - z.max(axis=1, keepdims=True))
            cdf = np.cumsum(p, axis=1)
            # One uniform draw per row against its cumulative weights (multinomial, batched).
            tokens = (cdf < rng.random((rows, 1)) * cdf[:, -1:]).sum(axis=1).astype(np.int64)
            logits, state = step(session, np.minimum(tokens, logits.shape[1] - 1), state)

    def probs(logits: np.ndarray) -> np.ndarray:
        z = logits[0].astype(np.float64)
        p: np.ndarray = np.exp(z - z.max())
        p /= p.sum()
        return p

    # A wrong peer is worse than none: the float32 graph must give our float32 distribution.
    expected = Generator(bundle, precision="float32").next_token_probs(SEED)
    float_gap = float(np.abs(probs(prime(sessions["float32"], 1)[0]) - expected).max())
    assert float_gap < 1e-4, f"ONNX float32 next-token probabilities differ from ours by {float_gap}"
    for label, session in sessions.items():
        gap = float(np.abs(probs(prime(session, 1)[0]) - expected).max())
        run(session, 1)  # warm up
        best, _ = best_and_median(lambda s=session: run(s, 1), runs)  # type: ignore[misc]
        batch_best, _ = best_and_median(lambda s=session: run(s, BATCH), 2)  # type: ignore[misc]
        table.add(
            f"ONNX Runtime {ort.__version__} {label}",
            best,
            BATCH * LENGTH / batch_best,
            f"(1 thread; max |p - ours f32| {gap:.1e})",
        )


def bench_book(bundle: object, table: Table, chars: int) -> None:
    """The book's loop and the fair TensorFlow baselines on the shipped model."""
    try:
        import keras
    except ImportError:
        table.add("book loop (TensorFlow)", None, None, "(skipped: TensorFlow not installed)")
        return
    from core.bundle import Bundle
    from core.keras_model import build_model, set_named_weights

    assert isinstance(bundle, Bundle)
    model = build_model(bundle.model)
    set_named_weights(model, dict(bundle.weights))
    window = bundle.model.window
    seed_ids = bundle.tokenizer.encode(SEED)[-window:]
    rng = np.random.default_rng(0)

    def pick(probs: np.ndarray) -> np.ndarray:
        """The book's sampling (log, /T, exp, normalise, multinomial), one row at a time."""
        p = np.log(np.maximum(probs.astype("float64"), 1e-30)) / 0.5
        p = np.exp(p - p.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return np.array([rng.choice(len(row), p=row) for row in p])

    def loop(rows: int, direct: bool) -> None:
        ids = np.array([seed_ids] * rows, dtype=np.int32)
        for _ in range(chars):
            x = ids[:, -window:]
            out = model(x, training=False) if direct else model.predict(x, verbose=0)
            probs = np.asarray(out)[:, -1] if np.asarray(out).ndim == 3 else np.asarray(out)
            ids = np.concatenate([ids, pick(probs)[:, None].astype(np.int32)], axis=1)

    scale = LENGTH / chars
    note = f"(Keras {keras.__version__}; timed on {chars} chars, scaled to {LENGTH})"
    loop(1, False)
    table.add(
        "book loop (predict per char)", best_and_median(lambda: loop(1, False), 1)[0] * scale, None, note
    )
    loop(1, True)
    table.add(
        "book model direct (call per char)", best_and_median(lambda: loop(1, True), 1)[0] * scale, None, note
    )
    seconds = best_and_median(lambda: loop(BATCH, False), 1)[0]
    table.add("book loop batched x64 (predict)", None, BATCH * chars / seconds, note)


def time_startup(model: str | None) -> tuple[float, str]:
    """Wall time of `lstmbot generate` from process start to one 400-char sample."""
    cmd = [
        sys.executable,
        "-m",
        "cli",
        "generate",
        "the will to truth",
        "-t",
        "0.5",
        "-n",
        "400",
        "--seed",
        "1",
    ]
    if model:
        cmd += ["--model", model]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"lstmbot generate failed: {proc.stderr.decode()}")
    return time.perf_counter() - started, proc.stdout.decode().splitlines()[0]


def main() -> None:
    """Print the settings, then the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7, help="runs per figure (the fastest is shown)")
    parser.add_argument("--book-chars", type=int, default=40, help="characters the TensorFlow loops time")
    parser.add_argument("--model", default=str(ROOT / "models" / "nietzsche-char"))
    parser.add_argument("--no-book", action="store_true", help="skip the TensorFlow figures")
    parser.add_argument("--json", metavar="PATH", help="also write the main figures there (bench.smallbox)")
    args = parser.parse_args()
    wall, first_line = time_startup(args.model)

    from core.bundle import load_bundle

    bundle = load_bundle(args.model)
    table = Table()
    bench_ours(bundle, table, args.runs)
    print("\n".join(blas_settings()))  # after numpy's and numba's pools exist
    bench_torch(bundle, table, args.runs)
    bench_onnx(bundle, table, args.runs)
    bench_window(bundle, table)
    if not args.no_book:
        bench_book(bundle, table, args.book_chars)
    else:
        table.add("book loop (TensorFlow)", None, None, "(skipped: --no-book)")
    shape = f"LSTM {bundle.model.lstm_units}, vocab {bundle.model.vocab_size}"
    print(f"\nGeneration on {bundle.name} ({shape}), T=0.5")
    table.print("numpy float32 (baseline)")
    print(product_floor(bundle, args.runs))
    print(f"\nlstmbot generate, process start to first sample: {wall:.2f} s ({first_line[:50]!r})")
    if args.json:
        Path(args.json).write_text(json.dumps(main_figures(table), indent=1) + "\n", encoding="utf-8")


def main_figures(table: Table) -> dict[str, float | None]:
    """Ours on one thread and ONNX Runtime int8 (None where it is not installed)."""
    rows = {name: (one, rate) for name, one, rate, _ in table.rows}
    one, rate = rows["ours int8, 1 thread"]
    onnx = next(
        (r for name, (_, r) in rows.items() if name.startswith("ONNX Runtime") and "int8" in name), None
    )
    return {"one_ms": None if one is None else one * 1000, "batch_cps": rate, "onnx_int8_cps": onnx}


if __name__ == "__main__":
    main()
