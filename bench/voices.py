"""More voices: each shipped model's held-out loss beside its public reference, the served int8
figure beside the float32 one, and how well the poem model keeps the form.

    python -m bench.voices [--models shakespeare-char ...] [--stride 1] [--float-stride 1]
                           [--poems 200]

Held-out loss is what `lstmbot eval` prints: the last 10% of the model's corpus (for Tiny
Shakespeare exactly nanoGPT's `data/shakespeare_char/prepare.py` split), every `stride`-th
token scored from the `window` tokens before it. The int8 figure is the path the bot serves;
the float32 one the trained weights; the target is int8 within +0.01 of float32.

For a model trained on the Tang poems: the share of free poems (seed: a newline, T = 0.8) whose
text up to the next newline is a regular 5- or 7-character quatrain or regulated verse
(`train.tang_corpus.poem_form`, the rule the corpus was selected by), and the share of
acrostics (random heads, 5 and 7 characters, T = 0.8) that keep the form exactly.

Run of 2026-12-06 (AMD EPYC, 2 cores, Zen 4 with AVX-512 VNNI/BF16, no AMX; one training
running beside it): `python -m bench.voices --models shakespeare-char --float-stride 10`, then
the same for tang-char:

    shakespeare-char (shakespeare, window 128, char level)
      held-out, int8 as served: 1.4225 nats/char (111,412 targets, stride 1, 252 s)
      float32 (trained) 1.4384, int8 1.4393 on the same 11,142 targets (stride 10, 92 s): gap
            +0.0009 (target <= +0.01) PASS
      reference: nanoGPT shakespeare_char: 6-layer transformer, 10.7M parameters, best val loss
            (A100, ~3 min): 1.4697
      ours (int8) 1.4225 vs target <= 1.47: PASS
    tang-char (tang, window 64, char level)
      held-out, int8 as served: 4.6849 nats/char (163,724 targets, stride 1, 71 s)
      float32 (trained) 4.6388, int8 4.6369 on the same 16,373 targets (stride 10, 17 s): gap
            -0.0019 (target <= +0.01) PASS
      free poems at T=0.8: 90.5% of 200 keep a regular form
      acrostics at T=0.8: 100.0% of 200 keep the form (target 100%) PASS
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.acrostic import Acrostic, acrostic_request, is_ideograph, lines, writes_poems
from core.bundle import Bundle, load_bundle
from core.generator import Generator, Precision, Request
from train.corpus import load_corpus
from train.data import split_corpus
from train.evaluate import heldout_metrics
from train.recipes import TrainConfig
from train.tang_corpus import poem_form

ROOT = Path(__file__).resolve().parent.parent
INT8_TOLERANCE = 0.01
POEM_TEMPERATURE = 0.8


@dataclass(frozen=True)
class Reference:
    """A published (or earlier) held-out figure on the same split, and our target against it."""

    what: str
    nats: float
    target: float


REFERENCES = {
    "shakespeare": Reference(
        "nanoGPT shakespeare_char: 6-layer transformer, 10.7M parameters, best val loss (A100, ~3 min)",
        1.4697,
        1.47,
    ),
    "nietzsche": Reference("v0.2's nietzsche-char (2 x 512, window 60)", 1.2749, 1.25),
}


def heldout(bundle: Bundle, stride: int, precision: Precision) -> tuple[float, int, float]:
    """Nats per token on the bundle's held-out split, the targets scored, and the seconds taken."""
    corpus = load_corpus(str(bundle.meta["corpus"]["name"]))
    training = bundle.meta.get("training") or {}
    config = TrainConfig(
        level="word" if bundle.level == "word" else "char",
        window=bundle.model.window,
        heldout_fraction=float(training.get("heldout_fraction", 0.1)),
    )
    split = split_corpus(corpus, config, bundle.tokenizer)
    started = time.perf_counter()
    metrics = heldout_metrics(
        Generator(bundle, precision=precision),
        split.heldout,
        heldout_chars=split.heldout_chars,
        stride=stride,
    )
    return metrics.nats_per_token, metrics.targets, time.perf_counter() - started


def free_poem_share(generator: Generator, poems: int) -> tuple[float, list[str]]:
    """The share of poems written from a newline at T = 0.8 that keep a regular form."""
    requests = [Request("\n", length=80, temperature=POEM_TEMPERATURE, rng=i) for i in range(poems)]
    written = [sample.text.split("\n", 1)[0] for sample in generator.generate(requests)]
    kept = [poem for poem in written if poem_form(poem) is not None]
    return len(kept) / poems, written


def acrostic_share(generator: Generator, poems: int) -> tuple[float, list[str]]:
    """The share of acrostics (random heads from the vocabulary) that keep the form exactly."""
    rng = np.random.default_rng(27)
    ideographs = [t for t in generator.tokenizer.tokens if len(t) == 1 and is_ideograph(t)]
    acrostics = [
        Acrostic("".join(rng.choice(ideographs, size=int(rng.choice([4, 8])))), int(rng.choice([5, 7])))
        for _ in range(poems)
    ]
    requests = [
        acrostic_request(generator.tokenizer, a, temperature=POEM_TEMPERATURE, rng=i)
        for i, a in enumerate(acrostics)
    ]
    written = [sample.text for sample in generator.generate(requests)]
    good = sum(_keeps_form(poem, a) for poem, a in zip(written, acrostics, strict=True))
    return good / poems, written


def _keeps_form(poem: str, acrostic: Acrostic) -> bool:
    rows = lines(poem, acrostic)
    return len(rows) == len(acrostic.heads) and all(
        row[0] == head
        and len(row) == acrostic.line_length + 1
        and all(is_ideograph(ch) for ch in row[:-1])
        and row[-1] == acrostic.end_mark(i)
        for i, (row, head) in enumerate(zip(rows, acrostic.heads, strict=True))
    )


def report(name: str, stride: int, float_stride: int, poems: int) -> bool:
    """Print one model's figures; False when a target it has is missed."""
    bundle = load_bundle(ROOT / "models" / name)
    corpus = str(bundle.meta["corpus"]["name"])
    unit = "char" if bundle.level == "char" else "word"
    served, targets, seconds = heldout(bundle, stride, "int8")
    print(f"\n{name} ({corpus}, window {bundle.model.window}, {bundle.level} level)")
    print(
        f"  held-out, int8 as served: {served:.4f} nats/{unit} "
        f"({targets:,} targets, stride {stride}, {seconds:.0f} s)"
    )
    trained, compared, f_seconds = heldout(bundle, float_stride, "float32")
    same = served if float_stride == stride else heldout(bundle, float_stride, "int8")[0]
    gap = same - trained
    ok = gap <= INT8_TOLERANCE
    print(
        f"  float32 (trained) {trained:.4f}, int8 {same:.4f} on the same {compared:,} targets "
        f"(stride {float_stride}, {f_seconds:.0f} s): gap {gap:+.4f} (target <= +{INT8_TOLERANCE}) "
        f"{'PASS' if ok else 'FAIL'}"
    )
    reference = REFERENCES.get(corpus)
    if reference is not None:
        met = served <= reference.target
        ok = ok and met
        print(f"  reference: {reference.what}: {reference.nats:.4f}")
        print(f"  ours (int8) {served:.4f} vs target <= {reference.target}: {'PASS' if met else 'FAIL'}")
    if writes_poems(bundle):
        generator = Generator(bundle)
        share, written = free_poem_share(generator, poems)
        print(f"  free poems at T={POEM_TEMPERATURE}: {share:.1%} of {poems} keep a regular form, e.g.")
        for poem in written[:3]:
            print(f"    {poem}")
        acrostic, made = acrostic_share(generator, poems)
        met = acrostic == 1.0
        ok = ok and met
        print(
            f"  acrostics at T={POEM_TEMPERATURE}: {acrostic:.1%} of {poems} keep the form (target 100%) "
            f"{'PASS' if met else 'FAIL'}, e.g. {made[0]}"
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    shipped = sorted(p.name for p in (ROOT / "models").iterdir() if (p / "config.json").is_file())
    parser.add_argument("--models", nargs="+", default=shipped, help="bundle names under models/")
    parser.add_argument("--stride", type=int, default=1, help="score every Nth held-out token (int8)")
    parser.add_argument(
        "--float-stride", type=int, help="the float32/int8 comparison's stride (default: --stride)"
    )
    parser.add_argument("--poems", type=int, default=200, help="poems per form check")
    args = parser.parse_args(argv)
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, cores {os.cpu_count()}")
    results = [
        report(name, args.stride, args.float_stride or args.stride, args.poems) for name in args.models
    ]
    print("\nall targets met" if all(results) else "\nsome targets missed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
