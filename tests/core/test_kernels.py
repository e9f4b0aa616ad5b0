"""The int8 product: the C kernel (as built by `pip install`) against the numba one and numpy."""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core import lstm_step
from core.lstm_step import KERNEL, lstm_layer, qmatmul
from core.numba_kernel import QuantMatrix, cell_update, on_grid, padded_inputs, qmatmul_numba


def test_the_c_kernel_was_built_by_the_install() -> None:
    # `make install` builds it (setup.py); a silent fallback to numba would cost ~3x in speed.
    assert KERNEL.startswith("C"), KERNEL


def _matrix(rng: np.random.Generator, inputs: int, outputs: int) -> QuantMatrix:
    return QuantMatrix.from_kernel(rng.normal(scale=0.3, size=(inputs, outputs)))


@pytest.mark.parametrize(("inputs", "outputs"), [(37, 18), (512, 2048), (1024, 2048), (16, 4)])
def test_panels_hold_the_rounded_weights_in_row_order(inputs: int, outputs: int) -> None:
    kernel = np.random.default_rng(inputs).normal(size=(inputs, outputs))
    m = QuantMatrix.from_kernel(kernel)
    assert m.kpad % 8 == 0 and m.rows % 16 == 0 and m.packed.size == m.rows * m.kpad
    scale = np.abs(kernel).max(axis=0) / 127
    np.testing.assert_array_equal(m.int8_rows(), np.rint(kernel / scale).T.astype(np.int8))
    assert np.abs(m.dequantized() - kernel).max() <= scale.max() / 2 + 1e-6


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    ("inputs", "outputs", "batch"),
    # 2, 3 and 6 rows: the few-rows path with two and three rows, four blocks at a time and a
    # tail of one (80 outputs: 5 blocks) or more (200: 13 blocks); 13 rows of 7 blocks: VNNI's
    # two blocks for eight rows, then its one block for the next four, its odd last block, one row
    [
        (70, 112, 13),
        (37, 18, 1),
        (37, 18, 5),
        (1024, 2048, 1),
        (512, 2048, 64),
        (520, 2048, 33),
        (100, 80, 2),
        (64, 200, 3),
        (64, 200, 6),
    ],
)
def test_c_and_numba_products_are_the_same_exact_integers(
    inputs: int, outputs: int, batch: int, threads: int
) -> None:
    rng = np.random.default_rng(batch)
    m = _matrix(rng, inputs, outputs)
    x = rng.uniform(-1, 1, size=(batch, inputs)).astype(np.float32)
    table = rng.normal(size=(3, outputs)).astype(np.float32)
    index = rng.integers(0, 3, size=batch)
    before = lstm_step.threads()
    try:
        assert lstm_step.threads(threads) == (threads if KERNEL.startswith("C") else 1)
        ours = qmatmul(m, x, table, index)
    finally:
        lstm_step.threads(before)
    reference = np.empty_like(ours)
    qmatmul_numba(m.packed, m.scale, m.corr, m.outputs, padded_inputs(m, x), table, index, reference)
    np.testing.assert_array_equal(ours, reference)
    # ... and both are the exact integer product, scaled: the grid's values times the weights.
    u = padded_inputs(m, x)[:, :inputs].astype(np.int64)
    sums = u @ m.int8_rows().T.astype(np.int64)
    expected = sums.astype(np.float32) * m.scale[:outputs] - m.corr[:outputs] + table[index]
    np.testing.assert_array_equal(ours, expected)
    exact = on_grid(x).astype(np.float64) @ m.dequantized().astype(np.float64) + table[index]
    assert np.abs(ours - exact).max() < 1e-4


def test_the_c_grid_is_numbas_grid() -> None:
    from core.numba_kernel import layer_inputs

    rng = np.random.default_rng(4)
    below = rng.uniform(-1.2, 1.2, size=(7, 37)).astype(np.float32)
    # exact ties of the grid (round half to even), the ends, beyond them, and NaN
    ties = ((np.arange(128, dtype=np.float32) + 0.5) / np.float32(63.5) - 1).astype(np.float32)
    h = np.resize(np.concatenate([ties, [-1, 1, -3, 3, np.nan, 0]]).astype(np.float32), (7, 40))
    np.testing.assert_array_equal(lstm_step._layer_inputs(below, h, 80), layer_inputs(below, h, 80))
    m = _matrix(rng, 40, 16)
    np.testing.assert_array_equal(lstm_step.padded_inputs(m, h), padded_inputs(m, h))


def test_the_c_entry_points_refuse_arrays_that_do_not_fit() -> None:
    """The C functions trust their pointers: what reaches them is checked first, as numba's
    compiled signatures did (wrong type or layout: TypeError; shapes that disagree: ValueError)."""
    if not KERNEL.startswith("C"):
        pytest.skip(f"the C kernel was not built: {KERNEL}")
    from core import _qkernel  # type: ignore[attr-defined]

    rng = np.random.default_rng(9)
    m = _matrix(rng, 24, 20)
    x = padded_inputs(m, rng.uniform(-1, 1, size=(3, 24)).astype(np.float32))
    table = np.zeros((2, 20), dtype=np.float32)
    index = np.zeros(3, dtype=np.int64)
    out = np.empty((3, 20), dtype=np.float32)
    _qkernel.qmatmul(m.packed, m.scale, m.corr, 20, x, table, index, out)  # fits
    with pytest.raises(TypeError, match="index"):
        _qkernel.qmatmul(m.packed, m.scale, m.corr, 20, x, table, index.astype(np.int32), out)
    with pytest.raises(TypeError, match="x"):
        _qkernel.qmatmul(m.packed, m.scale, m.corr, 20, np.asfortranarray(x[:, :8]), table, index, out)
    with pytest.raises(TypeError, match="out"):
        _qkernel.qmatmul(m.packed, m.scale, m.corr, 20, x, table, index, out[:, ::2])
    with pytest.raises(ValueError, match="shapes"):
        _qkernel.qmatmul(m.packed, m.scale, m.corr, 20, x[:, :8].copy(), table, index, out)
    with pytest.raises(ValueError, match="out of range"):
        _qkernel.qmatmul(m.packed, m.scale, m.corr, 20, x, table, np.array([0, 2, 1]), out)
    c = np.zeros((3, 5), dtype=np.float32)
    with pytest.raises(ValueError, match="shapes"):
        _qkernel.lstm_cell(np.zeros((3, 19), dtype=np.float32), c, c.copy(), c.copy())
    with pytest.raises(ValueError, match="offset"):
        _qkernel.quantize_into(np.zeros((3, 30), dtype=np.float32), np.zeros((3, 32), dtype=np.uint8), 4)
    readonly = np.zeros((3, 32), dtype=np.uint8)
    readonly.flags.writeable = False
    with pytest.raises(TypeError, match="writable"):
        _qkernel.quantize_into(np.zeros((3, 8), dtype=np.float32), readonly, 0)


def test_the_fused_c_layer_is_the_composed_layer_byte_for_byte() -> None:
    """core/lstm_step.py's lstm_layer runs as one C call (quantize, product, cell): the same bytes
    as those three calls one after another, for the first layer (no columns below) and later
    ones, at batch 1 and batches the kernel splits, with the weights read forwards or backwards
    (72 units: 288 rows, the last backwards span a partial one); arrays that do not fit are
    refused."""
    if not KERNEL.startswith("C"):
        pytest.skip(f"the C kernel was not built: {KERNEL}")
    from core import _qkernel  # type: ignore[attr-defined]
    from core.c_kernel import cell_c, layer_inputs_c, qmatmul_c

    rng = np.random.default_rng(11)
    cases = [(64, 0, 1), (64, 0, 64), (64, 64, 1), (64, 64, 3), (64, 64, 64), (72, 72, 1), (72, 0, 40)]
    for (units, below_columns, batch), backwards in itertools.product(cases, (False, True)):
        m = _matrix(rng, below_columns + units, 4 * units)
        table = rng.normal(size=(7, 4 * units)).astype(np.float32)
        index = rng.integers(0, 7, batch).astype(np.int64)
        below = rng.uniform(-1, 1, size=(batch, below_columns)).astype(np.float32)
        h = rng.uniform(-1, 1, size=(batch, units)).astype(np.float32)
        c = rng.normal(scale=2, size=(batch, units)).astype(np.float32)
        z = np.empty((batch, 4 * units), dtype=np.float32)
        qmatmul_c(m.packed, m.scale, m.corr, m.outputs, layer_inputs_c(below, h, m.kpad), table, index, z)
        composed = (np.empty_like(c), np.empty_like(c))
        cell_c(z, c, *composed)
        fused = lstm_layer(m, below, h, c, table, index, backwards=backwards)
        assert np.array_equal(fused[0], composed[0]) and np.array_equal(fused[1], composed[1])
    out = (np.empty_like(c), np.empty_like(c))
    with pytest.raises(ValueError, match="shapes"):  # h wider than the matrix takes
        _qkernel.lstm_layer(m.packed, m.scale, m.corr, below, np.hstack([h, h]), c, table, index, *out, False)
    with pytest.raises(ValueError, match="out of range"):
        _qkernel.lstm_layer(m.packed, m.scale, m.corr, below, h, c, table, index + 7, *out, False)
    with pytest.raises(TypeError, match="c_out"):
        _qkernel.lstm_layer(
            m.packed, m.scale, m.corr, below, h, c, table, index, out[0], out[1][:, ::2], False
        )


def test_a_whole_step_in_one_call_is_the_step_then_the_logits_byte_for_byte() -> None:
    """core/generator.py steps through the C kernel's lstm_step: every layer, then the dense
    product, in one call; the same state and logits as `_step` then `_logits`, at batch 1 and
    batches the kernel splits, on a shipped model of two layers and one of one."""
    if not KERNEL.startswith("C"):
        pytest.skip(f"the C kernel was not built: {KERNEL}")
    from core.bundle import load_bundle
    from core.generator import Generator

    rng = np.random.default_rng(12)
    for name in ("nietzsche-char", "tang-char"):
        generator = Generator(load_bundle(Path(__file__).resolve().parents[2] / "models" / name))
        vocab = generator.tokenizer.vocab_size
        for batch in (1, 5, 64):
            contexts = rng.integers(1, vocab, size=(batch, 12))
            state, _ = generator._prime(contexts)
            tokens = rng.integers(1, vocab, size=batch).astype(np.int64)
            one_by_one = [(h.copy(), c.copy()) for h, c in state]
            expected = generator._logits(generator._step(tokens, one_by_one))
            logits = generator._step_logits(tokens, state)
            assert np.array_equal(logits, expected)
            for (h, c), (h1, c1) in zip(state, one_by_one, strict=True):
                assert np.array_equal(h, h1) and np.array_equal(c, c1)
    from core import _qkernel  # type: ignore[attr-defined]

    layer = generator._layers[0]
    h, c = state[0]
    arrays = (layer.matrix.packed, layer.matrix.scale, layer.matrix.corr, layer.table, h, c)
    dense = (generator._dense.packed, generator._dense.scale, generator._dense.corr, generator._dense_bias)
    logits = np.empty((64, vocab), dtype=np.float32)
    with pytest.raises(TypeError, match="tuple of 8"):
        _qkernel.lstm_step(tokens, [arrays], dense, logits)
    with pytest.raises(ValueError, match="do not fit"):  # a token outside the table
        _qkernel.lstm_step(tokens + vocab, [(*arrays, h.copy(), c.copy())], dense, logits)
    with pytest.raises(ValueError, match="no layers"):
        _qkernel.lstm_step(tokens, [], dense, logits)


def test_a_row_does_not_depend_on_the_rest_of_the_batch() -> None:
    rng = np.random.default_rng(7)
    m = _matrix(rng, 1024, 2048)
    x = rng.uniform(-1, 1, size=(9, 1024)).astype(np.float32)
    table = np.zeros((1, 2048), dtype=np.float32)
    together = qmatmul(m, x, table, np.zeros(9, dtype=np.int64))
    for b in range(9):
        np.testing.assert_array_equal(
            together[b], qmatmul(m, x[b : b + 1], table, np.zeros(1, dtype=np.int64))[0]
        )


def test_the_c_cell_matches_numbas_and_the_layer_is_the_lstm_step() -> None:
    rng = np.random.default_rng(3)
    units = 20  # not a multiple of 8: the C cell's plain tail runs too
    z = rng.normal(scale=3, size=(5, 4 * units)).astype(np.float32)
    c = rng.normal(size=(5, units)).astype(np.float32)
    ours = (np.empty_like(c), np.empty_like(c))
    lstm_step._cell(z, c, *ours)
    numba_h, numba_c = np.empty_like(c), np.empty_like(c)
    cell_update(z, c, numba_h, numba_c)
    # The same formulas; the C cell fuses multiply-adds, so the last float32 bit may differ.
    np.testing.assert_allclose(ours[0], numba_h, rtol=0, atol=2e-6)
    np.testing.assert_allclose(ours[1], numba_c, rtol=0, atol=2e-6)
    # The layer: gates from the product of [below, h], then the standard LSTM cell.
    m = _matrix(rng, 2 * units, 4 * units)
    below, h = (rng.uniform(-1, 1, size=(5, units)).astype(np.float32) for _ in range(2))
    bias = rng.normal(size=(1, 4 * units)).astype(np.float32)
    h_new, c_new = lstm_layer(m, below, h, c, bias, np.zeros(5, dtype=np.int64))
    gates = on_grid(np.hstack([below, h])) @ m.dequantized() + bias
    i, f, g, o = (gates[:, k * units : (k + 1) * units] for k in range(4))
    sigmoid = 1 / (1 + np.exp(-np.array([i, f, o])))
    expected_c = sigmoid[1] * c + sigmoid[0] * np.tanh(g)
    np.testing.assert_allclose(c_new, expected_c, atol=1e-4)
    np.testing.assert_allclose(h_new, sigmoid[2] * np.tanh(expected_c), atol=1e-4)


def test_concurrent_callers_and_a_forked_child_get_the_right_product() -> None:
    rng = np.random.default_rng(5)
    m = _matrix(rng, 1024, 2048)
    x = rng.uniform(-1, 1, size=(8, 1024)).astype(np.float32)
    table = np.zeros((1, 2048), dtype=np.float32)
    index = np.zeros(8, dtype=np.int64)
    expected = qmatmul(m, x, table, index)
    before = lstm_step.threads(2)
    qmatmul(m, x, table, index)  # starts the helper thread
    wrong: list[int] = []

    def caller(n: int) -> None:
        for _ in range(200):
            if not np.array_equal(qmatmul(m, x, table, index), expected):
                wrong.append(n)

    callers = [threading.Thread(target=caller, args=(n,)) for n in range(3)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(timeout=60)
    lstm_step.threads(before)
    assert not wrong and not any(t.is_alive() for t in callers)
    # A fork keeps only the forking thread: the child must not wait for a helper it lacks.
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child process
        os._exit(0 if np.array_equal(qmatmul(m, x, table, index), expected) else 1)
    deadline = time.monotonic() + 60
    while not (waited := os.waitpid(pid, os.WNOHANG))[0]:
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            pytest.fail("the forked child hung in the product")
        time.sleep(0.05)
    status = waited[1]
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_big_cell_update_shared_by_two_threads_is_the_same() -> None:
    rng = np.random.default_rng(9)
    z = rng.normal(scale=3, size=(64, 4 * 512)).astype(np.float32)
    c = rng.normal(size=(64, 512)).astype(np.float32)
    alone = (np.empty_like(c), np.empty_like(c))
    shared = (np.empty_like(c), np.empty_like(c))
    before = lstm_step.threads(1)
    try:
        lstm_step._cell(z, c, *alone)
        lstm_step.threads(2)
        lstm_step._cell(z, c, *shared)
    finally:
        lstm_step.threads(before)
    np.testing.assert_array_equal(alone[0], shared[0])
    np.testing.assert_array_equal(alone[1], shared[1])


_EVERY_PATH = """
import hashlib, numpy as np
from core.numba_kernel import QuantMatrix
from core.lstm_step import KERNEL, _cell, qmatmul
rng = np.random.default_rng(7)
digest = hashlib.sha256()
# (130, 80, 48), (520, 2048, 33) and (45, 40, 12): AMX's tails (inputs past a multiple of 64, an
# odd block, batch rows past a multiple of 16 and of 32, a batch of one padded tile)
shapes = [(37, 18, 5), (512, 2048, 1), (512, 2048, 64), (70, 33, 7), (130, 80, 48), (520, 2048, 33)]
# (70, 112, 13): VNNI's two blocks for eight rows, then one block for four, its odd last block
shapes += [(70, 112, 13), (45, 40, 12), (100, 80, 2), (64, 200, 3), (64, 200, 6)]  # few-rows groups
for inputs, outputs, batch in shapes:
    m = QuantMatrix.from_kernel(rng.normal(scale=0.3, size=(inputs, outputs)))
    x = rng.uniform(-1, 1, size=(batch, inputs)).astype(np.float32)
    table = rng.normal(size=(3, outputs)).astype(np.float32)
    digest.update(qmatmul(m, x, table, rng.integers(0, 3, size=batch)).tobytes())
# 37 and 45 units: tails of 5 (scalar) and 8 + 5 (AVX2 after AVX-512, then scalar)
for batch, units in [(5, 37), (3, 45), (1, 512), (64, 512)]:
    z = rng.normal(scale=3, size=(batch, 4 * units)).astype(np.float32)
    c = rng.normal(size=(batch, units)).astype(np.float32)
    h_out, c_out = np.empty_like(c), np.empty_like(c)
    _cell(z, c, h_out, c_out)
    digest.update(h_out.tobytes() + c_out.tobytes())
print(KERNEL, digest.hexdigest())
"""


def _run_capped(script: str, cap: str) -> list[str]:
    """The words `script` prints in a fresh interpreter whose kernel is capped at `cap`."""
    import subprocess
    import sys

    env = {**os.environ, "LSTMBOT_QKERNEL_ISA": cap}
    return subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout.split()


def test_every_instruction_set_gives_the_same_bytes() -> None:
    """AMX, AVX-512 VNNI, AVX2 and plain C (LSTMBOT_QKERNEL_ISA caps the choice) write identical
    floats, products and cell updates alike, so a stored rng seed regenerates its sample on any
    machine. (Without AMX, cap 4 runs the VNNI path again.)"""
    if not KERNEL.startswith("C"):
        pytest.fail(f"the C kernel was not built: {KERNEL}")
    results = {}
    for cap in ("4", "3", "2", "1"):
        out = _run_capped(_EVERY_PATH, cap)
        results[cap] = (" ".join(out[:-1]), out[-1])
    assert results["1"][0] == "C, plain loops"
    if _amx_state() == "usable":
        assert results["4"][0].startswith("C, AMX"), results
    assert len({digest for _, digest in results.values()}) == 1, results


def _amx_state() -> str:
    from core.c_kernel import AMX_STATE

    return AMX_STATE


def _skip_without_amx() -> None:
    if not KERNEL.startswith("C"):
        pytest.fail(f"the C kernel was not built: {KERNEL}")
    if (state := _amx_state()) != "usable":
        pytest.skip(f"AMX tiles cannot run here: {state}")


@pytest.mark.parametrize(
    ("inputs", "outputs", "batch"),
    # 8, 12 rows: one padded tile of rows; 16: one whole; 17, 33: whole ones and a padded one of a
    # single row; 48: a pair of tiles and a single one; 520 and 130 inputs: 8 past a multiple of 64;
    # 18, 33 and 80 outputs: an odd last block and one that ends past the outputs
    [
        (37, 18, 8),
        (520, 2048, 12),
        (37, 18, 16),
        (70, 33, 17),
        (130, 80, 48),
        (520, 2048, 33),
        (1024, 2048, 64),
        (200, 16, 100),
    ],
)
def test_amx_tiles_give_the_exact_integers(inputs: int, outputs: int, batch: int) -> None:
    _skip_without_amx()
    if not KERNEL.startswith("C, AMX"):
        pytest.skip(f"LSTMBOT_QKERNEL_ISA caps the kernel below AMX: {KERNEL}")
    rng = np.random.default_rng(inputs + batch)
    m = _matrix(rng, inputs, outputs)
    x = rng.uniform(-1, 1, size=(batch, inputs)).astype(np.float32)
    table = rng.normal(size=(3, outputs)).astype(np.float32)
    index = rng.integers(0, 3, size=batch)
    before = lstm_step.tile_calls()
    ours = qmatmul(m, x, table, index)
    assert lstm_step.tile_calls() > before, "the product did not use the tiles"
    u = padded_inputs(m, x)[:, :inputs].astype(np.int64)
    sums = u @ m.int8_rows().T.astype(np.int64)
    expected = sums.astype(np.float32) * m.scale[:outputs] - m.corr[:outputs] + table[index]
    np.testing.assert_array_equal(ours, expected)


_GENERATION = """
import hashlib
from core.generator import Generator, Request
from core.lstm_step import KERNEL, tile_calls
g = Generator.from_path(MODEL)
seed = "the will to truth, which is to tempt us to many a hazardous e"
texts = []
for rows in (40, 64, 3):  # tiles for 40 rows (2 x 16 + 8 padded), for 64, none for 3
    samples = g.generate([Request(seed, length=150, temperature=0.8, rng=r) for r in range(rows)])
    texts += [s.text for s in samples]
print(KERNEL.replace(" ", "_"), tile_calls(), hashlib.sha256(repr(texts).encode()).hexdigest())
"""


def test_amx_generates_the_vnni_tokens_on_the_shipped_model() -> None:
    """The shipped model's samples for the same rng seeds, in batches that use the tiles, are the
    same text with AMX as with AVX-512 VNNI (LSTMBOT_QKERNEL_ISA=3)."""
    _skip_without_amx()
    shipped = Path(__file__).resolve().parents[2] / "models" / "nietzsche-char"
    script = f"MODEL = {str(shipped)!r}\n" + _GENERATION
    amx = _run_capped(script, "4")
    vnni = _run_capped(script, "3")
    assert amx[0].startswith("C,_AMX") and int(amx[1]) > 0, amx
    assert vnni[0] == "C,_AVX-512_VNNI" and int(vnni[1]) == 0, vnni
    assert amx[2] == vnni[2]
