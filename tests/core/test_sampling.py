"""Sampling: the book's temperature formula, greedy, top-k/top-p, batch rows, numerical safety."""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.sampling import GREEDY_BELOW, draw, log_probs, reweight, sample, sample_batch, sample_from_probs

P = np.array([0.5, 0.0, 0.3, 0.15, 0.05])


@pytest.mark.parametrize("temperature", [0.2, 0.5, 1.0, 1.2, 3.0])
def test_reweight_is_the_books_formula(temperature: float) -> None:
    expected = P ** (1 / temperature)
    expected /= expected.sum()
    np.testing.assert_allclose(reweight(P, temperature), expected, rtol=1e-12, atol=1e-15)


def test_temperature_zero_is_greedy() -> None:
    rng = np.random.default_rng(0)
    assert {sample_from_probs(P, 0.0, rng) for _ in range(50)} == {0}
    np.testing.assert_array_equal(reweight(P, 0), [1, 0, 0, 0, 0])


def test_very_high_temperature_tends_to_uniform_over_possible_tokens() -> None:
    out = reweight(P, 1e6)
    assert out[1] == 0.0  # impossible stays impossible
    np.testing.assert_allclose(out[[0, 2, 3, 4]], 0.25, atol=1e-5)


@pytest.mark.parametrize("temperature", [0.2, 0.5, 1.0, 1.2])
def test_sample_frequencies_match_the_reweighted_distribution(temperature: float) -> None:
    rng = np.random.default_rng(42)
    n = 20_000
    counts = np.bincount([sample_from_probs(P, temperature, rng) for _ in range(n)], minlength=len(P))
    expected = reweight(P, temperature)
    assert counts[1] == 0
    # Four standard errors: fails only if the sampler is wrong, not by chance.
    np.testing.assert_allclose(counts / n, expected, atol=4 * np.sqrt(0.25 / n))


def test_top_k_keeps_only_the_k_best() -> None:
    rng = np.random.default_rng(1)
    picks = {sample_from_probs(P, 1.0, rng, top_k=2) for _ in range(2000)}
    assert picks == {0, 2}


def test_top_p_keeps_the_smallest_nucleus() -> None:
    rng = np.random.default_rng(2)
    picks = {sample_from_probs(P, 1.0, rng, top_p=0.7) for _ in range(2000)}
    assert picks == {0, 2}  # 0.5 < 0.7, 0.5 + 0.3 reaches it
    assert {sample_from_probs(P, 1.0, rng, top_p=0.4) for _ in range(200)} == {0}


def test_batch_rows_use_their_own_temperature_and_rng() -> None:
    logits = np.log(np.tile(P, (3, 1)) + 1e-300)
    rngs = [np.random.default_rng(s) for s in (5, 6, 7)]
    assert sample_batch(logits, [0.0, 1.0, 1.0], rngs)[0] == 0  # the greedy row
    # A row's draws depend only on its own rng: rerunning row 2 alone reproduces it.
    again = [np.random.default_rng(s) for s in (5, 6, 7)]
    batch = sample_batch(logits, [0.5, 1.0, 1.2], again)
    alone = [
        sample(logits[i], t, np.random.default_rng(s))
        for i, (t, s) in enumerate(zip([0.5, 1.0, 1.2], (5, 6, 7), strict=True))
    ]
    assert batch.tolist() == alone


def test_no_warnings_with_zeros_and_extreme_values() -> None:
    rng = np.random.default_rng(3)
    nearly_one = np.array([0.3, 0.3, 0.4 + 1e-12, 0.0])  # sums to slightly more than 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for t in (0.0, 1e-9, 0.2, 1.0, 50.0):
            assert sample_from_probs(nearly_one, t, rng) in (0, 1, 2)
        lp = log_probs(np.array([[-np.inf, 0.0, 1e30]]), 0.5)
        assert lp[0, 2] == 0.0 and lp[0, 0] == -np.inf


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.1, -1.0])
def test_bad_temperatures_raise_value_error(bad: float) -> None:
    with pytest.raises(ValueError, match="temperature"):
        sample_from_probs(P, bad, np.random.default_rng(0))


@pytest.mark.parametrize(("top_k", "top_p"), [(-1, None), (None, 0.0), (None, 1.5), (None, float("nan"))])
def test_bad_top_k_and_top_p_raise(top_k: int | None, top_p: float | None) -> None:
    with pytest.raises(ValueError):
        sample_from_probs(P, 1.0, np.random.default_rng(0), top_k=top_k, top_p=top_p)


# -- every valid temperature, extreme logits -----------------------------------------------------

# Valid temperatures across the whole float range: 0, subnormals, tiny, ordinary, huge-but-finite.
valid_temperatures = st.one_of(
    st.sampled_from([0.0, 5e-324, 1e-320, 1e-310, 1e-300, 1e-12, 1e-7, 1e-6, 1e-5, 1.0, 1e300, 1.7e308]),
    st.floats(min_value=0.0, allow_nan=False, allow_infinity=False),
)
# Logits anywhere in the float range, or -inf (masked); at least one entry in a row is finite.
logit_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([-np.inf, 0.0, 1.7e308, -1.7e308, 1e-300]),
)


@st.composite
def logit_rows(draw: st.DrawFn) -> npt.NDArray[np.float64]:
    row = draw(st.lists(logit_values, min_size=1, max_size=12))
    if all(v == -np.inf for v in row):
        row[draw(st.integers(0, len(row) - 1))] = draw(st.floats(allow_nan=False, allow_infinity=False))
    return np.array(row, dtype=np.float64)


@given(
    row=logit_rows(),
    temperature=valid_temperatures,
    uniform=st.one_of(st.sampled_from([0.0, 0.5, 1 - 2**-53]), st.floats(0.0, 1.0, exclude_max=True)),
    top_k=st.sampled_from([None, 1, 3]),
    top_p=st.sampled_from([None, 0.5, 0.9]),
)
def test_any_valid_temperature_draws_a_real_unmasked_token(
    row: npt.NDArray[np.float64], temperature: float, uniform: float, top_k: int | None, top_p: float | None
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / invalid-value warnings either
        (pick,) = draw(row[None, :], np.array([temperature]), np.array([uniform]), top_k=top_k, top_p=top_p)
        lp = log_probs(row, temperature)
    assert 0 <= pick < row.size and row[pick] != -np.inf
    assert not np.isnan(lp).any() and np.isclose(np.exp(lp).sum(), 1.0)
    assert (lp[0][row == -np.inf] == -np.inf).all()  # masked stays impossible
    if temperature < GREEDY_BELOW:
        assert pick == int(np.argmax(row))


@pytest.mark.parametrize("temperature", [5e-324, 1e-320, 1e-310, 1e-9, GREEDY_BELOW / 2])
def test_temperatures_below_the_epsilon_are_greedy(temperature: float) -> None:
    """1e-320 passed validation, overflowed logits / T to inf, gave NaN and drew the unknown token."""
    logits = np.array([-np.inf, 2.0, 3.0, 1.0])  # id 0, the unknown token, is masked
    rngs = [np.random.default_rng(s) for s in range(20)]
    assert sample_batch(np.tile(logits, (20, 1)), [temperature] * 20, rngs).tolist() == [2] * 20
    np.testing.assert_array_equal(np.exp(log_probs(logits, temperature)), [[0, 0, 1, 0]])


@pytest.mark.parametrize(
    "row", [[-np.inf, -np.inf], [0.0, np.nan], [np.inf, 0.0]], ids=["all-masked", "nan", "+inf"]
)
def test_logits_with_no_valid_token_are_refused(row: list[float]) -> None:
    with pytest.raises(ValueError, match="logits"):
        sample(np.array(row), 1.0, np.random.default_rng(0))


def test_the_compiled_draw_picks_what_draw_picks() -> None:
    from core.numba_draw import draw_plain

    rng = np.random.default_rng(11)
    z = (rng.normal(size=(4000, 61)) * 4).astype(np.float32)
    z[::7, 5] = -np.inf  # masked by the model itself
    temps = rng.choice([0.0, 1e-7, 0.2, 0.5, 1.0, 1.2, 50.0], size=4000)
    uniforms = rng.random(4000)
    uniforms[:3] = [0.0, np.nextafter(1.0, 0.0), 0.5]
    picks = draw_plain(z, temps, uniforms, 0)
    reference = z.astype(np.float64)
    reference[:, 0] = -np.inf
    np.testing.assert_array_equal(picks, draw(reference, temps, uniforms))
    assert 0 not in picks


@pytest.mark.parametrize("row", [[np.nan, 1.0], [np.inf, 1.0], [3.0, -np.inf]])
def test_the_compiled_draw_refuses_rows_with_no_usable_token(row: list[float]) -> None:
    from core.numba_draw import draw_plain

    with pytest.raises(ValueError, match="finite"):
        draw_plain(np.array([row], dtype=np.float32), np.array([1.0]), np.array([0.5]), 0)


def test_the_c_draw_picks_what_the_numba_draw_picks() -> None:
    from core.lstm_step import KERNEL
    from core.lstm_step import draw_plain as served
    from core.numba_draw import draw_plain

    if not KERNEL.startswith("C"):
        pytest.skip(f"the C kernel was not built: {KERNEL}")
    rng = np.random.default_rng(12)
    for rows, vocab in ((4000, 61), (200, 8000)):  # the shipped models' vocabularies
        z = (rng.normal(size=(rows, vocab)) * 3).astype(np.float32)
        z[::5, 7] = -np.inf
        temps = rng.choice([0.0, 1e-7, 0.2, 0.5, 1.0, 1.2, 50.0], size=rows)
        uniforms = rng.random(rows)
        uniforms[:3] = [0.0, np.nextafter(1.0, 0.0), 0.5]
        np.testing.assert_array_equal(served(z, temps, uniforms, 0), draw_plain(z, temps, uniforms, 0))
    for row in ([np.nan, 1.0], [np.inf, 1.0], [3.0, -np.inf]):
        with pytest.raises(ValueError, match="finite"):
            served(np.array([row], dtype=np.float32), np.array([1.0]), np.array([0.5]), 0)
