"""`lstmbot eval`: held-out cross-entropy of a bundle on the last 10% of a corpus."""

from __future__ import annotations

import argparse
from typing import Any

from cli import CliError


def register(subparsers: Any) -> None:
    """Add the `eval` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "eval",
        help="score a model on the held-out end of a corpus",
        description="Held-out cross-entropy (nats and bits per token and per character; word "
        "models also perplexity) on the last part of the corpus, never trained on.",
    )
    p.add_argument("--model", help="bundle folder or model name (default: nietzsche-char)")
    p.add_argument("--corpus", required=True, help="'nietzsche', a text file or a folder of .txt files")
    p.add_argument("--stride", type=int, default=1, help="score every Nth held-out token (default: all)")
    p.add_argument("--heldout-fraction", type=float, default=0.1, help="the held-out share (default: 0.1)")
    p.add_argument(
        "--precision",
        choices=["int8", "float32"],
        default="int8",
        help="int8: the weights the bot serves with (default); float32: the trained weights",
    )
    p.add_argument("--write", action="store_true", help="store the result in the bundle's metrics")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Score the bundle and print (and optionally record) the metrics."""
    from cli.bundles import resolve_model
    from core.bundle import BundleError, load_bundle
    from core.generator import Generator
    from train.corpus import CorpusError, load_corpus
    from train.data import split_corpus
    from train.evaluate import heldout_metrics
    from train.export import write_metrics
    from train.recipes import TrainConfig

    if args.stride < 1:
        raise CliError("--stride must be at least 1")
    if not 0 < args.heldout_fraction < 1:
        raise CliError("--heldout-fraction must be between 0 and 1")
    path = resolve_model(args.model)
    try:
        bundle = load_bundle(path)
        corpus = load_corpus(args.corpus)
    except (BundleError, CorpusError) as exc:
        raise CliError(str(exc)) from None
    config = TrainConfig(
        level="word" if bundle.level == "word" else "char",
        window=bundle.model.window,
        heldout_fraction=args.heldout_fraction,
    )
    try:
        split = split_corpus(corpus, config, bundle.tokenizer)
    except CorpusError as exc:
        raise CliError(str(exc)) from None
    metrics = heldout_metrics(
        Generator(bundle, precision=args.precision),
        split.heldout,
        heldout_chars=split.heldout_chars,
        stride=args.stride,
    )
    trained_on = bundle.meta.get("corpus", {}).get("sha256")
    if trained_on and trained_on != corpus.sha256:
        print("note: this is not the corpus the model was trained on; the held-out part may differ")
    unit = "char" if bundle.level == "char" else "word"
    print(
        f"model {bundle.name} ({bundle.level}), corpus {corpus.name}: {metrics.targets:,} {unit}s scored "
        f"(of the held-out last {args.heldout_fraction:.0%}, every {_nth(args.stride)}; context "
        f"{bundle.model.window}, "
        f"{'int8 weights and 7-bit activations, as served' if args.precision == 'int8' else 'float32'})"
    )
    print(
        f"  cross-entropy: {metrics.nats_per_token:.4f} nats/{unit}, {metrics.bits_per_token:.4f} bits/{unit}"
    )
    if bundle.level == "word":  # a char model's bits per character are the line above
        print(f"  bits per character: {metrics.bits_per_char:.4f}")
    if bundle.level == "word":
        print(f"  perplexity: {metrics.perplexity:.2f}")
    if args.write:
        write_metrics(path, metrics, corpus=corpus)
        print(f"  written to {path / 'config.json'}")
    return 0


def _nth(stride: int) -> str:
    """ "one" for a stride of 1, else "200th" and the like."""
    if stride == 1:
        return "one"
    suffix = "th" if 10 <= stride % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(stride % 10, "th")
    return f"{stride}{suffix}"
