"""The numpy generator: same distribution as Keras, reproducible, batch-equivalent, streaming."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.bundle import load_bundle
from core.generator import KERNEL_MAX_ROWS, Generator, Request
from core.lstm_step import KERNEL
from tests.conftest import BundleFactory

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "nietzsche-char"
SEED = "the terrible seriousness and clumsy importunity with which they have"


def keras_next_probs(path: Path, seed: str) -> np.ndarray:
    """The Keras model's distribution after the last `window` tokens of `seed`."""
    from core.keras_model import build_model, set_named_weights

    bundle = load_bundle(path)
    model = build_model(bundle.model)
    set_named_weights(model, dict(bundle.weights))
    ids = bundle.tokenizer.encode(seed)[-bundle.model.window :]
    assert len(ids) == bundle.model.window
    if bundle.model.input == "onehot":
        x = np.eye(bundle.model.vocab_size, dtype=np.float32)[ids][None]
    else:
        x = np.array([ids], dtype=np.int32)
    out = np.asarray(model.predict(x, verbose=0))
    return out[0, -1] if out.ndim == 3 else out[0]


@pytest.mark.parametrize(
    "arch",
    [
        {"input": "onehot", "lstm_units": (32,)},  # the book's shape, scaled down
        {"input": "embedding", "lstm_units": (32,)},
        {"input": "embedding", "lstm_units": (24, 16)},
    ],
)
def test_next_token_distribution_equals_keras(make_bundle: BundleFactory, arch: dict[str, object]) -> None:
    path = make_bundle(**arch)
    ours = Generator(load_bundle(path), precision="float32").next_token_probs(SEED)
    theirs = keras_next_probs(path, SEED)
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < 1e-5
    assert abs(ours.sum() - 1) < 1e-9


def test_output_is_reproducible_for_a_fixed_rng_seed(tiny_bundle: Path) -> None:
    generator = Generator(load_bundle(tiny_bundle))
    a = generator.generate_one(Request(SEED, length=120, temperature=0.8, rng=7))
    b = generator.generate_one(Request(SEED, length=120, temperature=0.8, rng=7))
    c = generator.generate_one(Request(SEED, length=120, temperature=0.8, rng=8))
    assert a.text == b.text and len(a.token_ids) == 120
    assert a.text != c.text


def test_batch_equals_one_by_one(make_bundle: BundleFactory) -> None:
    generator = Generator(load_bundle(make_bundle(lstm_units=(24, 16), scale=0.2)))
    seeds = ["a", "truth is a woman", SEED, "what then? is there not ground", "x" * 100]
    temps, top_ks = [0.0, 0.2, 0.5, 1.0, 1.2], [None, None, 5, None, 10]
    requests = [
        Request(seed, length=40 + 13 * i, temperature=t, rng=100 + i, top_k=k)
        for i, (seed, t, k) in enumerate(zip(seeds, temps, top_ks, strict=True))
    ]
    together = generator.generate(requests)
    alone = [generator.generate_one(r) for r in requests]
    assert [s.text for s in together] == [s.text for s in alone]
    assert [len(s.token_ids) for s in together] == [r.length for r in requests]


def test_batches_of_any_size_up_to_the_kernel_limit_equal_one_by_one(make_bundle: BundleFactory) -> None:
    # Sixteen rows used to take OpenBLAS's matrix-matrix path and differ (~6e-5) from one row;
    # the int8 kernel sums exactly in int32, so every row is bit-identical to running it alone.
    generator = Generator(load_bundle(make_bundle(lstm_units=(24, 16), scale=0.2)))
    requests = [Request(f"{SEED[i:]} {i}", length=30 + 3 * i, temperature=1.0, rng=i) for i in range(16)]
    together = generator.generate(requests)
    assert [s.text for s in together] == [generator.generate_one(r).text for r in requests]
    contexts = np.array([generator.context_ids(SEED[i : i + 25])[0] for i in range(16)])
    rows = generator.batch_logits(contexts)
    assert all(np.array_equal(rows[i], generator.batch_logits(contexts[i : i + 1])[0]) for i in range(16))


def test_big_batches_match_the_kernel_within_float_rounding(make_bundle: BundleFactory) -> None:
    generator = Generator(load_bundle(make_bundle(lstm_units=(24, 16), scale=0.2)))
    contexts = np.array(
        [generator.context_ids(SEED[i % 40 : i % 40 + 25])[0] for i in range(KERNEL_MAX_ROWS + 8)]
    )
    blas = generator.batch_logits(contexts)  # more rows than the kernel takes: float32 BLAS
    kernel = np.vstack([generator.batch_logits(contexts[i : i + 1]) for i in range(len(contexts))])
    assert np.abs(blas - kernel).max() < 1e-4


def test_int8_serving_stays_within_0_01_nats_of_float32_on_held_out_text() -> None:
    # The shipped model on a slice of its own held-out text (the full figure: `lstmbot eval`).
    from train.corpus import load_corpus

    bundle = load_bundle(SHIPPED)
    text = load_corpus("nietzsche").text.lower()
    ids = np.array(bundle.tokenizer.encode(text[-30_000:]))
    starts = np.arange(0, len(ids) - bundle.model.window - 1, 150)
    contexts = np.stack([ids[s : s + bundle.model.window] for s in starts])
    targets = ids[starts + bundle.model.window]

    def nats(generator: Generator) -> float:
        z = generator.batch_logits(contexts).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(z)), targets]))

    served, reference = nats(Generator(bundle)), nats(Generator(bundle, precision="float32"))
    assert len(targets) >= 190
    assert abs(served - reference) < 0.01


def test_precision_is_checked(tiny_bundle: Path) -> None:
    with pytest.raises(ValueError, match="precision"):
        Generator(load_bundle(tiny_bundle), precision="float16")  # type: ignore[arg-type]


def test_stream_yields_the_same_text(tiny_bundle: Path) -> None:
    generator = Generator(load_bundle(tiny_bundle))
    request = Request(SEED, length=50, temperature=1.0, rng=3)
    assert "".join(generator.stream(request)) == generator.generate_one(request).text


def test_a_stream_in_chunks_yields_the_tokens_of_step_by_step() -> None:
    """`stream` draws 16 tokens a C call: token for token what the per-step path draws, on the
    shipped model (which feels a stale state), for a length that is not a multiple of 16."""
    generator = Generator(load_bundle(SHIPPED))
    for request in (
        Request(SEED, length=50, temperature=0.9, rng=3),
        Request(SEED, length=20, temperature=0.9, rng=3, top_k=5),  # step by step itself
    ):
        pieces = list(generator.stream(request))
        (ids,) = _step_by_step(generator, [request])
        assert pieces == [generator.tokenizer.tokens[i] for i in ids]


def test_greedy_is_deterministic_without_a_seed(tiny_bundle: Path) -> None:
    generator = Generator(load_bundle(tiny_bundle))
    texts = {generator.generate_one(Request(SEED, length=30, temperature=0.0)).text for _ in range(3)}
    assert len(texts) == 1


def test_unknown_characters_in_the_seed_are_counted_not_fatal(tiny_bundle: Path) -> None:
    generator = Generator(load_bundle(tiny_bundle))
    sample = generator.generate_one(Request("truth 🙂 红楼梦 \x00", length=10, rng=1))
    assert sample.unknown == 5 and len(sample.token_ids) == 10
    assert sample.context_tokens == len("truth 🙂 红楼梦 \x00")


def test_long_seed_uses_only_the_last_window(tiny_bundle: Path) -> None:
    generator = Generator(load_bundle(tiny_bundle))
    long_seed = "z" * 100_000 + SEED
    a = generator.generate_one(Request(long_seed, length=20, rng=1))
    b = generator.generate_one(Request(SEED, length=20, rng=1))
    assert a.context_tokens == generator.window and a.text == b.text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"temperature": float("nan")},
        {"temperature": -1.0},
        {"length": 0},
        {"length": 10**9},
        {"top_p": 2.0},
    ],
)
def test_bad_requests_raise_value_error(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Request("seed", **kwargs)  # type: ignore[arg-type]


def test_empty_seed_is_a_clear_error(tiny_bundle: Path) -> None:
    with pytest.raises(ValueError, match="seed is empty"):
        Generator(load_bundle(tiny_bundle)).generate_one(Request("", length=5))


def test_serving_path_never_imports_tensorflow(tiny_bundle: Path) -> None:
    code = (
        "import sys\n"
        "from core.bundle import load_bundle\n"
        "from core.generator import Generator, Request\n"
        f"g = Generator(load_bundle({str(tiny_bundle)!r}))\n"
        "print(len(g.generate_one(Request('truth', length=20, rng=1)).text))\n"
        "bad = [m for m in ('tensorflow', 'keras', 'telegram', 'sqlalchemy') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "20"


def test_the_unknown_token_is_never_generated(tiny_bundle: Path) -> None:
    import dataclasses

    bundle = load_bundle(tiny_bundle)
    weights = dict(bundle.weights)
    bias = weights["dense/bias"].copy()
    bias[0] = 50.0  # the model all but insists on the unknown token
    weights["dense/bias"] = bias
    generator = Generator(dataclasses.replace(bundle, weights=weights))
    assert generator.next_token_probs("truth")[0] > 0.99  # the model's own distribution is untouched
    sample = generator.generate_one(Request("truth", length=200, temperature=1.0, rng=0))
    assert 0 not in sample.token_ids and "\ufffd" not in sample.text


def test_kernel_tanh_matches_numpy() -> None:
    from core.numba_kernel import _tanh

    x = np.linspace(-12, 12, 20_001, dtype=np.float32)
    ours = np.array([_tanh(v) for v in x], dtype=np.float32)
    assert np.abs(ours - np.tanh(x)).max() < 1e-6


def _step_by_step(generator: Generator, requests: list[Request]) -> list[list[int]]:
    """The per-step path (`iter_batch`: draw_tokens, then _step_logits), token ids per row."""
    ids: list[list[int]] = [[] for _ in requests]
    for tokens in generator.iter_batch(requests):
        for row, token in enumerate(tokens):
            if token is not None:
                ids[row].append(token)
    return ids


def test_plain_runs_draw_the_tokens_of_step_by_step() -> None:
    """`generate` runs temperature-only rows many steps a C call (`_run_plain`): the same token
    ids as the per-step path, for one row and for rows of different lengths and temperatures
    (greedy included), with an rng passed as a Generator left where the per-step path leaves it."""
    if not KERNEL.startswith("C"):
        pytest.skip(f"plain runs need the C kernel: {KERNEL}")
    generator = Generator(load_bundle(SHIPPED))  # a tiny random model hardly feels its state
    batches = [
        [Request(SEED, length=97, temperature=1.0, rng=3)],
        [
            Request(f"{SEED[i:]} {i}", length=5 + 17 * i, temperature=t, rng=i)
            for i, t in enumerate([0.0, 0.3, 0.7, 1.0, 1.5])
        ],
    ]
    for requests in batches:
        assert generator.runs_plain(requests)
        plain = generator.generate(requests)
        assert [s.token_ids for s in plain] == _step_by_step(generator, requests)
        assert [len(s.token_ids) for s in plain] == [r.length for r in requests]
    shared, again = np.random.default_rng(9), np.random.default_rng(9)
    generator.generate([Request(SEED, length=40, temperature=0.9, rng=shared)])
    _step_by_step(generator, [Request(SEED, length=40, temperature=0.9, rng=again)])
    assert shared.random() == again.random()  # both spent exactly 40 numbers
    assert not generator.runs_plain([Request(SEED, length=5, temperature=1.0, top_k=3)])


def _prime_step_by_step(
    generator: Generator, contexts: list[list[int]]
) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """`_prime` as it ran before it went a layer at a time: every layer for each step in turn."""
    longest = max(len(ctx) for ctx in contexts)
    padded = np.zeros((len(contexts), longest), dtype=np.int64)
    starts = np.array([longest - len(ctx) for ctx in contexts])
    for row, ctx in enumerate(contexts):
        padded[row, starts[row] :] = ctx
    state = generator._zero_state(len(contexts))
    top = state[-1][0]
    for t in range(longest):
        top = generator._step(padded[:, t], state)
        for h, c in state:
            h[starts > t] = 0.0
            c[starts > t] = 0.0
    return state, generator._logits(top)


def _same_state(a: list[tuple[np.ndarray, np.ndarray]], b: list[tuple[np.ndarray, np.ndarray]]) -> bool:
    return all(
        np.array_equal(ha, hb) and np.array_equal(ca, cb) for (ha, ca), (hb, cb) in zip(a, b, strict=True)
    )


def test_priming_a_layer_at_a_time_is_priming_step_by_step_byte_for_byte() -> None:
    """`_prime` runs the C kernel a layer at a time over the whole context (the weights stay in
    the caches) with the weights read alternately backwards: the state and logits of every row,
    byte for byte, as every layer step by step, for one row, rows of different lengths (shorter
    ones held at the zero state) and a batch that takes the AMX tiles where the CPU has them."""
    if not KERNEL.startswith("C"):
        pytest.skip(f"priming a layer at a time needs the C kernel: {KERNEL}")
    generator = Generator(load_bundle(SHIPPED))
    ids = generator.context_ids(SEED)[0]
    for contexts in ([ids], [ids[i:] for i in range(0, 25, 5)], [ids[i % 30 :] for i in range(40)]):
        state, logits = generator._prime(contexts)
        expected_state, expected_logits = _prime_step_by_step(generator, contexts)
        assert _same_state(state, expected_state) and np.array_equal(logits, expected_logits)


@pytest.mark.parametrize("layers", [None, (24,), (24, 16, 8)])
def test_runs_in_rounds_leave_the_step_by_step_state_and_logits_byte_for_byte(
    make_bundle: BundleFactory, layers: tuple[int, ...] | None
) -> None:
    """`_run_plain` reads layer 0's weights for the next step beside the upper layers' and
    alternates the direction (core/qpython.c, lstm_run): the tokens, the state and the logits,
    byte for byte, of drawing and stepping one step at a time, after an odd and an even number
    of steps and over two calls in a row, at 1, 3 and 40 rows (rounds under 8 rows), for the
    shipped model and models of one and three layers."""
    if not KERNEL.startswith("C"):
        pytest.skip(f"plain runs need the C kernel: {KERNEL}")
    from core.generator import draw_tokens, filter_groups

    bundle = SHIPPED if layers is None else make_bundle(lstm_units=layers, scale=0.5)
    generator = Generator(load_bundle(bundle))
    rng = np.random.default_rng(5)
    for rows in (1, 3, 40):
        contexts = [generator.context_ids(SEED[i % 20 :])[0] for i in range(rows)]
        temps = rng.uniform(0.2, 1.3, rows)
        for calls in ([7], [8], [5, 6]):
            state, logits = generator._prime(contexts)
            ours, our_logits = [(h.copy(), c.copy()) for h, c in state], logits.copy()
            ran, stepped = [], []
            for steps in calls:
                uniforms = rng.random((steps, rows))
                drawn, our_logits = generator._run_plain(our_logits, ours, temps, uniforms)
                ran.append(drawn)
                for u in uniforms:  # the same draws and steps, one at a time
                    picked = draw_tokens(logits, temps, u, filter_groups([(None, None)] * rows), [])
                    stepped.append(picked)
                    logits = generator._step_logits(picked, state)
            assert np.array_equal(np.vstack(ran), np.vstack(stepped)), (rows, calls)
            assert _same_state(ours, state) and np.array_equal(our_logits, logits), (rows, calls)


def test_a_running_batch_advanced_many_steps_at_once_finishes_as_step_by_step(
    make_bundle: BundleFactory,
) -> None:
    """RunningBatch.advance (the bot's worker) gives each row the tokens `step` gives it, stops
    at the first row to finish, and takes rows that join between calls; a row with top-k goes
    step by step."""
    from core.batching import RunningBatch

    generator = Generator(load_bundle(SHIPPED))  # a tiny random model hardly feels its state

    def run(most: int) -> list[tuple[int, list[int], int]]:
        batch, finished, calls = RunningBatch(generator), [], 0
        batch.add_many(
            [(i, Request(f"{SEED[i:]} {i}", length=10 + 9 * i, temperature=0.8, rng=i)) for i in range(3)]
        )
        while len(batch):
            calls += 1
            if calls == 2:
                batch.add(7, Request("truth", length=12, temperature=1.1, rng=7))
                batch.add(8, Request("truth", length=9, temperature=1.0, rng=8, top_k=4))
            finished += [(tag, sample.token_ids, calls) for tag, sample in batch.advance(most)]
        return finished

    one_by_one, at_once = run(1), run(16)
    assert sorted((tag, ids) for tag, ids, _ in at_once) == sorted((tag, ids) for tag, ids, _ in one_by_one)
    assert max(call for *_, call in at_once) < max(call for *_, call in one_by_one)


def test_the_run_entry_point_refuses_arrays_that_do_not_fit(tiny_bundle: Path) -> None:
    if not KERNEL.startswith("C"):
        pytest.skip(f"plain runs need the C kernel: {KERNEL}")
    from core import _qkernel  # type: ignore[attr-defined]

    generator = Generator(load_bundle(tiny_bundle))
    state, logits = generator._prime([[1, 2, 3]])
    layers = [
        (layer.matrix.packed, layer.matrix.scale, layer.matrix.corr, layer.table, h, c, h.copy(), c.copy())
        for layer, (h, c) in zip(generator._layers, state, strict=True)
    ]
    dense = (generator._dense.packed, generator._dense.scale, generator._dense.corr, generator._dense_bias)
    cdf, temps = np.empty(logits.shape[1]), np.ones(1)
    with pytest.raises(ValueError, match="one token and uniform per step"):
        _qkernel.lstm_run(
            np.empty((3, 1), np.int64), logits, layers, dense, temps, np.zeros((4, 1)), 0, 0.01, cdf
        )
    with pytest.raises(ValueError, match="finite"):
        bad = np.full_like(logits, np.nan)
        _qkernel.lstm_run(
            np.empty((2, 1), np.int64), bad, layers, dense, temps, np.zeros((2, 1)), 0, 0.01, cdf
        )
    read_only = state[0][0].copy()
    read_only.flags.writeable = False
    with pytest.raises(TypeError, match="writable"):
        stale = [(*layers[0][:4], read_only, *layers[0][5:]), *layers[1:]]
        _qkernel.lstm_run(
            np.empty((2, 1), np.int64), logits, stale, dense, temps, np.zeros((2, 1)), 0, 0.01, cdf
        )


def test_the_first_layers_table_does_not_depend_on_blas_threads() -> None:
    """Layer 0's token table is a BLAS product; in float32 its last bits followed OpenBLAS's
    thread count (the bot limits BLAS to one thread when it starts, so a model loaded later
    wrote other text for the same seed and rng). Built in float64 on one thread, it does not."""
    from threadpoolctl import threadpool_limits

    from core.packed import first_table

    bundle = load_bundle(SHIPPED)
    with threadpool_limits(limits=1, user_api="blas"):
        one = first_table(bundle, bundle.weights, None)
    with threadpool_limits(limits=2, user_api="blas"):
        two = first_table(bundle, bundle.weights, None)
        text = Generator(bundle).generate_one(Request(SEED, length=300, temperature=1.0, rng=4)).text
    assert np.array_equal(one, two)
    with threadpool_limits(limits=1, user_api="blas"):
        assert Generator(bundle).generate_one(Request(SEED, length=300, temperature=1.0, rng=4)).text == text
