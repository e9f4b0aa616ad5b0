"""The `lstmbot` console script: one entry point, one module per subcommand.

Each subcommand module exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a callable ``(args) -> int``. Modules are imported here, but each keeps its heavy
imports (TensorFlow, telegram, SQLAlchemy) inside its ``run`` function so that
``lstmbot generate`` starts fast and never loads TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Order here is the order shown in `lstmbot --help`.
SUBCOMMANDS: tuple[str, ...] = (
    "generate",
    "train",
    "eval",
    "db",
    "models",
    "learn",
    "export",
    "leaderboard",
    "run",
    "sandbox",
)


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="lstmbot",
        description="Continue text with an LSTM language model; train, evaluate and serve it.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        # Every subcommand is written: a missing module is a broken install or a bad rename, and
        # must fail loudly rather than drop the subcommand from `lstmbot --help`.
        importlib.import_module(f"cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console script; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"lstmbot {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
