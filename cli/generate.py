"""`lstmbot generate`: continue a seed at one or more temperatures, like the book's loop."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cli import CliError


def _temperatures(text: str) -> list[float]:
    from core.sampling import check_temperature

    values = []
    for part in text.replace(" ", "").split(","):
        try:
            values.append(check_temperature(float(part)))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{part!r} is not a temperature: use numbers >= 0 separated by commas, e.g. 0.2,0.5,1.0"
            ) from None
    return values


def register(subparsers: Any) -> None:
    """Add the `generate` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "generate",
        help="continue a seed phrase with a model",
        description="Continue SEED with a model bundle, once per temperature.",
    )
    p.add_argument("seed", help="the beginning of the text to continue")
    p.add_argument("--model", help="bundle folder or model name (default: nietzsche-char)")
    p.add_argument(
        "--temperature",
        "-t",
        type=_temperatures,
        default=[0.2, 0.5, 1.0, 1.2],
        help="comma-separated temperatures; 0 = greedy (default: 0.2,0.5,1.0,1.2)",
    )
    p.add_argument("--length", "-n", type=int, default=400, help="tokens to generate (default: 400)")
    p.add_argument(
        "--seed",
        dest="rng_seed",
        type=int,
        help="random seed for reproducible output: every temperature draws with it, so a temperature's "
        "text does not depend on the others listed (and the temperatures compare on the same draws)",
    )
    p.add_argument("--top-k", type=int, help="sample only from the K most likely tokens")
    p.add_argument("--top-p", type=float, help="sample only from the most likely tokens holding mass P")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the bundle once and stream one sample per temperature."""
    from cli.bundles import cache_dir, resolve_model
    from core.bundle import BundleError, load_bundle
    from core.generator import Generator, Request

    path = resolve_model(args.model)
    try:
        # "lazy": the sha256 of every file is checked; weights.h5 is parsed only where the int8
        # weights are not cached yet (a cold start saves ~100 ms: h5py, the parse, the packing).
        generator = Generator(load_bundle(path, weights="lazy"), cache_dir=cache_dir())
    except BundleError as exc:
        raise CliError(f"cannot load the model: {exc}") from None
    try:
        requests = [
            Request(
                args.seed,
                length=args.length,
                temperature=t,
                top_k=args.top_k,
                top_p=args.top_p,
                rng=args.rng_seed,
            )
            for t in args.temperature
        ]
        _, unknown = generator.context_ids(args.seed)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if unknown:
        print(
            f"note: {unknown} token(s) of the seed are not in the model's vocabulary; "
            "they were read as unknown",
            file=sys.stderr,
        )
    out = sys.stdout
    for request in requests:
        out.write(f"--- temperature {request.temperature:g}\n{args.seed}")
        for piece in generator.stream(request):
            out.write(piece)
            out.flush()
        out.write("\n\n")
    return 0
