"""Leaderboard fit cost: CPU time of the Bradley-Terry fit with its 200-round bootstrap.

    python -m bench.leaderboard [--rounds 200] [--arms 10]

Times `bot.ranking.leaderboard` (vectorised: one tally of the votes, one multinomial draw
for all bootstrap rounds, Newton on the stacked win matrices) at 1k, 10k and 100k counted
votes, and the implementation it replaced (a Python loop over resampled votes per round and
choix's iterative Luce spectral ranking, here ported to numpy so that choix and scipy need not
be installed) at 1k and 10k in the same process, as the baseline. CPU time is
`time.process_time` (all threads of this process), best of a few runs: other processes share
the cores. BLAS is held to the bot's one thread (bot.generation.BLAS_THREADS), as when serving.
Target: under 100 ms of CPU at 100,000 votes.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_info, threadpool_limits

from bot.db.outcomes import Outcome, Vote
from bot.generation import BLAS_THREADS
from bot.ranking import ALPHA, leaderboard

TARGET_MS = 100.0
SIZES = (1_000, 10_000, 100_000)
OLD_SIZES = (1_000, 10_000)  # the old fit takes ~11 s at 100k: not worth the wait
TEMPERATURES = (0.2, 0.5, 0.8, 1.0, 1.2)


def simulated_votes(n: int, arms: Sequence[str], rng: np.random.Generator) -> list[Vote]:
    """Votes on random pairs of arms, with ties and "both bad" as voters give them."""
    pairs = list(itertools.combinations(arms, 2))
    picks = rng.integers(len(pairs), size=n)
    kinds = rng.choice(4, size=n, p=[0.45, 0.3, 0.15, 0.1])
    outcomes = list(Outcome)
    return [Vote(pairs[i][0], pairs[i][1], outcomes[k]) for i, k in zip(picks, kinds, strict=True)]


def luce_spectral(wins: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """choix 0.4.1's `ilsr_pairwise_dense(wins, alpha=ALPHA)` in numpy (scipy's LU -> solve)."""
    n = len(wins)
    params = np.zeros(n)
    for _ in range(100):
        weights = np.exp(params - params.mean())
        weights *= n / weights.sum()
        chain = ALPHA + wins.T / (weights[:, None] + weights[None, :])
        np.fill_diagonal(chain, 0.0)
        system = (chain - np.diag(chain.sum(axis=1))).T
        system[-1] = 1.0  # the stationary distribution sums to 1 (one balance row is redundant)
        stationary = np.linalg.solve(system, np.eye(n)[-1])
        new: npt.NDArray[np.float64] = np.log(stationary) - np.log(stationary).mean()
        if np.abs(new - params).sum() < 1e-8:
            return new
        params = new
    raise RuntimeError("did not converge after 100 iterations")


def old_win_matrix(votes: Sequence[Vote], arms: Sequence[str]) -> npt.NDArray[np.float64]:
    """The replaced `win_matrix`: a Python loop over the votes."""
    index = {arm: i for i, arm in enumerate(arms)}
    wins = np.zeros((len(arms), len(arms)))
    for vote in votes:
        a, b = index[vote.arm_a], index[vote.arm_b]
        if vote.outcome is Outcome.A:
            wins[a, b] += 1
        elif vote.outcome is Outcome.B:
            wins[b, a] += 1
        elif vote.outcome is Outcome.TIE:
            wins[a, b] += 0.5
            wins[b, a] += 0.5
    return wins


def old_leaderboard(votes: Sequence[Vote], rounds: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """The replaced bootstrap: resample whole votes in Python and refit, `rounds` times."""
    names = sorted({v.arm_a for v in votes} | {v.arm_b for v in votes})
    luce_spectral(old_win_matrix(votes, names))
    resamples = (rng.integers(len(votes), size=len(votes)) for _ in range(rounds))
    draws = np.array([luce_spectral(old_win_matrix([votes[i] for i in pick], names)) for pick in resamples])
    bounds: npt.NDArray[np.float64] = np.percentile(draws, [2.5, 97.5], axis=0)
    return bounds


def cpu_ms(work: Callable[[], object], repeats: int) -> float:
    """The least CPU time (ms) of `repeats` runs."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best * 1000


def blas_settings() -> list[str]:
    """The thread pools numpy will use, and the environment that sets them."""
    lines = [f"cpu: {os.cpu_count()} cores"]
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        lines.append(f"{var}={os.environ.get(var, '(unset)')}")
    for pool in threadpool_info():
        lines.append(
            f"threadpoolctl: {pool.get('internal_api')} {pool.get('version')} "
            f"threads={pool.get('num_threads')} ({pool.get('prefix')})"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Print the timings and PASS/FAIL against the target; exit 1 on FAIL."""
    parser = argparse.ArgumentParser(prog="python -m bench.leaderboard", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=200, help="bootstrap rounds (default 200, as the bot)")
    parser.add_argument("--arms", type=int, default=10, help="arms, i.e. (model, temperature) pairs")
    args = parser.parse_args(argv)
    arms = [f"model{m}@{t}" for m in range(args.arms) for t in TEMPERATURES][: args.arms]
    threadpool_limits(limits=BLAS_THREADS, user_api="blas")  # as the bot serves
    print("\n".join(blas_settings()))
    rng = np.random.default_rng(0)
    votes = simulated_votes(max(SIZES), arms, rng)
    leaderboard(votes[:100], rounds=args.rounds)  # first calls load numpy's code paths
    print(f"\n{args.arms} arms, {args.rounds} bootstrap rounds; CPU ms, best of runs")
    new_ms: dict[int, float] = {}
    for size in SIZES:
        new_ms[size] = cpu_ms(partial(leaderboard, votes[:size], rounds=args.rounds), 5)
        line = f"{size:>8,} votes: vectorised {new_ms[size]:8.1f} ms"
        if size in OLD_SIZES:
            old = cpu_ms(partial(old_leaderboard, votes[:size], args.rounds, rng), 1)
            line += f"   old {old:9.1f} ms   ({old / new_ms[size]:,.0f}x)"
        print(line)
    verdict = "PASS" if new_ms[max(SIZES)] < TARGET_MS else "FAIL"
    print(f"\n{verdict}: {new_ms[max(SIZES)]:.1f} ms at {max(SIZES):,} votes (target < {TARGET_MS:.0f} ms)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
