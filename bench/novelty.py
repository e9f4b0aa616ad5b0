"""Novelty check cost: how long it takes to find what a sample copied from its model's book.

    python -m bench.novelty [--samples 100] [--length 400]

For each shipped model: build the index over the training part of its corpus (once per
bundle, as the bot does at start), generate samples at the book's four temperatures and
greedy, and time `NoveltyIndex.check` per sample. Target: under 2 ms for a 400-token sample.
Also prints how much the samples copied, per temperature (greedy and low temperatures copy most).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from core.book import Book
from core.bundle import load_bundle
from core.generator import Generator, Request
from core.novelty import NoveltyIndex

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 2.0
TEMPERATURES = (0.0, 0.2, 0.5, 1.0, 1.2)


def bench_model(name: str, samples: int, length: int) -> None:
    """Index one shipped model's book and time checks of its own samples."""
    bundle = load_bundle(ROOT / "models" / name)
    started = time.perf_counter()
    training = Book.of(bundle).training.tolist()  # as the bot finds it (the held-out part is not the book)
    encoded_s = time.perf_counter() - started
    started = time.perf_counter()
    index = NoveltyIndex(training)
    built_s = time.perf_counter() - started
    unit = "characters" if bundle.level == "char" else "words"
    print(f"\n{name}: book of {len(training):,} {unit}; encode {encoded_s:.2f} s, ", end="")
    print(f"index {built_s * 1000:.0f} ms")

    generator = Generator(bundle)
    seeds = bundle.meta.get("seeds") or ["the "]
    index.check(training[:length])  # compile the search once, outside the timings
    for temperature in TEMPERATURES:
        requests = [
            Request(str(seeds[i % len(seeds)]), length=length, temperature=temperature, rng=i)
            for i in range(samples // len(TEMPERATURES))
        ]
        timings, longest, new = [], [], []
        for sample in generator.generate(requests):
            started = time.perf_counter()
            result = index.check(sample.token_ids)
            timings.append((time.perf_counter() - started) * 1000)
            longest.append(result.longest_copied)
            new.append(result.new_ngram_share)
        p95 = float(np.percentile(timings, 95))
        verdict = "ok" if p95 < TARGET_MS else "OVER TARGET"
        print(
            f"  T={temperature:<4g} check: mean {statistics.fmean(timings):.3f} ms, p95 {p95:.3f} ms "
            f"(target < {TARGET_MS} ms: {verdict}); longest copied run median "
            f"{statistics.median(longest):.0f} {unit}, new 8-grams {statistics.fmean(new):.0%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=100, help="samples per model, over temperatures")
    parser.add_argument("--length", type=int, default=400, help="tokens per sample")
    args = parser.parse_args()
    for name in ("nietzsche-char", "hongloumeng-word"):
        bench_model(name, args.samples, args.length)


if __name__ == "__main__":
    main()
