"""What a lesson would do: a change of sharpness judged by a taste, the gates and the duel test.

    python -m bench.lessons [--taste vocabulary] [--samples 256] [--lesson 1.15,0.95 ...]
        [--bundle PATH]

A lesson (train/lesson.py) multiplies the champion's logits by one factor after a letter
(inside a word) and another after anything else. For each `--lesson INSIDE,ELSEWHERE`, applied
to the shipped nietzsche-char when it samples, and for each `--bundle` (a distilled challenger,
sampled as it is), against the shipped model:

- the taste's duels at every duel temperature (0.2, 0.5, 0.8, 1.0, 1.2): the two models
  continue the same prompts with the same rng seeds, the taste prefers one or ties;
- the pooled score (ties as half) and how often the bot's sequential test (bot/promotion.py,
  alpha 0.05, 30 to 200 votes) promotes a challenger with those odds, over 400 simulated runs;
- the gates' measures against the champion's: held-out loss (every 20th char) and the share of
  8-grams copied from the book at T=0.5 (train/gates.py's probe).

Measured (2026-12-07, AMD EPYC Zen 5, 256 samples of 400 chars a temperature, vocabulary taste):

    lesson (inside, elsewhere)   T=1.0 won   pooled   promoted   held-out    copy at 0.5
    1.04, 1.04 (global)            63%       0.543      12%      +0.0075     +0.84 pt
    1.05, 1.05 (global)            67%       0.559      19%      +0.0101     +0.89 pt
    1.05, 0.95                     61%       0.576      31%
    1.10, 0.95                     73%       0.632      87%
    1.10, 0.90                     74%       0.649      94%
    1.15, 0.95                     78%       0.654      95%      +0.0269     +0.77 pt
    1.15, 0.95 distilled           78%       0.633       -       +0.0252     +0.80 pt

Every lesson loses the duels at T=0.2 and 0.5 (the sharper model loops more: repeated
three-word phrases) and wins from 0.8 up: a global sharpening wins too little to be promoted,
and costs the copy gate as much as the taste it buys; sharper inside words and softer between
them wins more for each point of copying.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench import preferences as bp
from bot.promotion import Rules, judge
from core.bundle import load_bundle
from core.generator import Generator
from core.novelty import NoveltyIndex
from train.corpus import load_corpus
from train.data import heldout_windows, seed_snippets, split_corpus
from train.lesson import inside_word
from train.recipes import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
TEMPERATURES = (0.2, 0.5, 0.8, 1.0, 1.2)
LENGTH = 400
Ids = list[npt.NDArray[np.int64]]


def sample(
    generator: Generator,
    prompts: Sequence[str],
    factors: npt.NDArray[np.float64],
    *,
    temperature: float,
    count: int,
    seed: int,
) -> Ids:
    """`count` samples (prompt i mod len), the logits after token t multiplied by factors[t]
    before the draw (all 1: the generator as served, drawn by numpy here)."""
    rng = np.random.default_rng(seed)
    vocab = len(factors)
    out: Ids = []
    for begin in range(0, count, 64):
        rows = min(64, count - begin)
        contexts = [
            generator.tokenizer.encode(prompts[(begin + i) % len(prompts)])[-generator.window :]
            for i in range(rows)
        ]
        # The generator's own priming and step (private: this bench samples with a change the
        # served sampler does not have).
        state, logits = generator._prime(contexts)
        before = np.array([ctx[-1] for ctx in contexts])
        ids = np.zeros((rows, LENGTH), np.int64)
        for t in range(LENGTH):
            z = logits.astype(np.float64) * factors[before][:, None] / temperature
            p = np.exp(z - z.max(axis=1, keepdims=True))
            cdf = np.cumsum(p, axis=1)
            drawn = np.minimum((cdf < rng.random((rows, 1)) * cdf[:, -1:]).sum(axis=1), vocab - 1)
            ids[:, t] = before = drawn
            logits = generator._step_logits(drawn, state)
        out.extend(ids)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--taste", choices=sorted(bp.TASTES), default="vocabulary")
    parser.add_argument("--samples", type=int, default=256, help="samples a model and temperature")
    parser.add_argument("--lesson", action="append", default=[], help="INSIDE,ELSEWHERE factors")
    parser.add_argument("--bundle", action="append", default=[], type=Path, help="a challenger bundle")
    args = parser.parse_args(argv)
    lessons = [tuple(float(x) for x in text.split(",")) for text in args.lesson] or [(1.15, 0.95)]

    champion = Generator(load_bundle(ROOT / "models" / "nietzsche-char"))
    corpus = load_corpus("nietzsche")
    split = split_corpus(corpus, TrainConfig(level="char", window=champion.window), champion.tokenizer)
    index = NoveltyIndex(split.train)
    prompts = list(champion.bundle.meta.get("seeds") or seed_snippets(corpus.text, champion.tokenizer))
    score, _ = bp.TASTES[args.taste]
    vocab = bp.vocabulary(corpus.text)
    inside = inside_word(champion.tokenizer)
    plain = np.ones(len(inside))

    def judged(ids: Ids) -> npt.NDArray[np.float64]:
        return np.array([score(champion.tokenizer.decode(list(row)), vocab) for row in ids])

    def copy_rate(ids: Ids) -> float:
        return float(np.mean([1 - index.check(row).new_ngram_share for row in ids]))

    def heldout(generator: Generator, factors: npt.NDArray[np.float64]) -> float:
        """Nats a char on every 20th held-out char (train/evaluate.py's measure, with the factors)."""
        contexts, targets = heldout_windows(split.heldout, generator.window, 20)
        total = 0.0
        for begin in range(0, len(targets), 64):
            part = contexts[begin : begin + 64]
            z = generator.batch_logits(part).astype(np.float64) * factors[part[:, -1]][:, None]
            z -= z.max(axis=1, keepdims=True)
            total += float(
                (np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(z)), targets[begin : begin + 64]]).sum()
            )
        return total / len(targets)

    base_loss = heldout(champion, plain)
    base_copy = copy_rate(sample(champion, prompts, plain, temperature=0.5, count=args.samples, seed=2))
    base = {
        t: judged(sample(champion, prompts, plain, temperature=t, count=args.samples, seed=int(t * 100)))
        for t in TEMPERATURES
    }
    print(
        f"taste {args.taste}, {args.samples} samples of {LENGTH} chars a temperature; the champion: "
        f"held-out {base_loss:.4f}, copy {base_copy:.2%} at T=0.5"
    )
    contenders: list[tuple[str, Generator, npt.NDArray[np.float64]]] = [
        (f"lesson {a:g}, {b:g}", champion, np.where(inside, a, b)) for a, b in lessons
    ]
    contenders += [(f"bundle {path}", Generator(load_bundle(path)), plain) for path in args.bundle]
    rng = np.random.default_rng(0)
    for label, generator, factors in contenders:
        pooled = []
        line = []
        for t in TEMPERATURES:
            theirs = judged(
                sample(generator, prompts, factors, temperature=t, count=args.samples, seed=int(t * 100))
            )
            pooled.append(np.where(theirs > base[t], 1.0, np.where(theirs < base[t], 0.0, 0.5)))
            line.append(f"T={t:g} {np.mean(theirs > base[t]):.0%}/{np.mean(theirs < base[t]):.0%}")
        votes = np.concatenate(pooled)
        promoted = sum(
            judge(list(rng.choice(votes, 200)), Rules(0.05, 30, 200)).verdict == "promote" for _ in range(400)
        )
        loss = heldout(generator, factors)
        copied = copy_rate(sample(generator, prompts, factors, temperature=0.5, count=args.samples, seed=2))
        print(
            f"{label}: won/lost {', '.join(line)}; pooled {votes.mean():.3f}, promoted in "
            f"{promoted / 4:.0f}% of 400 runs; held-out {loss - base_loss:+.4f}, "
            f"copy {100 * (copied - base_copy):+.2f} pt",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
