"""`lstmbot train`: train a model bundle on a corpus with the book's recipe or the fast one."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from cli import CliError


def register(subparsers: Any) -> None:
    """Add the `train` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "train",
        help="train a model on a text corpus",
        description="Train an LSTM language model and write its bundle (config, vocabulary, weights).",
    )
    p.add_argument(
        "--corpus",
        help="'nietzsche', 'hongloumeng', 'shakespeare', 'tang', a UTF-8 text file, or a folder of .txt "
        "files (with --init-from: defaults to the bundle's own corpus)",
    )
    p.add_argument(
        "--level", choices=("char", "word"), default="char", help="char (English) or word (Chinese, jieba)"
    )
    p.add_argument("--out", required=True, type=Path, help="bundle folder to write, e.g. models/my-model")
    p.add_argument(
        "--recipe",
        choices=("book", "fast"),
        default="fast",
        help="book: the book's exact recipe (default: fast)",
    )
    p.add_argument("--epochs", type=int, help="most epochs to run (early stopping may end sooner)")
    p.add_argument("--hidden", type=int, help="LSTM units per layer")
    p.add_argument("--layers", type=int, help="number of stacked LSTM layers")
    p.add_argument("--batch", type=int, help="sequences per batch")
    p.add_argument("--embedding", type=int, dest="embedding_dim", help="embedding width (fast recipe)")
    p.add_argument("--dropout", type=float, help="dropout between layers")
    p.add_argument("--lr", type=float, dest="learning_rate", help="learning rate")
    p.add_argument(
        "--window", type=int, help="context length in tokens (with --init-from: the base's unless given)"
    )
    p.add_argument(
        "--keep-case",
        action="store_true",
        help="char level: keep upper case (default: lower-case the text, as the book does)",
    )
    p.add_argument(
        "--max-vocab",
        type=int,
        help="vocabulary size, unknown token included: the most frequent words, or characters "
        "(char level: binds only for a Chinese text such as tang; default 10000)",
    )
    p.add_argument("--steps-per-epoch", type=int, help="batches per epoch (default: one pass over the text)")
    p.add_argument("--val-stride", type=int, help="score every Nth held-out token after each epoch")
    p.add_argument(
        "--strategy", choices=("default", "mirrored", "multiworker"), help="tf.distribute strategy"
    )
    p.add_argument("--threads", type=int, help="CPU threads for TensorFlow")
    p.add_argument(
        "--precision",
        choices=("float32", "mixed_bfloat16"),
        help="mixed_bfloat16: compute in bfloat16 with float32 weights (faster on CPUs with "
        "AVX512-BF16 or AMX; default float32)",
    )
    p.add_argument(
        "--ema",
        type=float,
        help="weight averaging: score and keep an exponential moving average of the weights with "
        "this momentum, e.g. 0.995 (default: the raw weights)",
    )
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    p.add_argument(
        "--init-from", type=Path, help="fine-tune: start from this bundle's weights and vocabulary"
    )
    p.add_argument(
        "--preferences",
        type=Path,
        help="with --init-from: a KTO or DPO export (JSON Lines) to learn from (see --preference-loss)",
    )
    p.add_argument(
        "--preference-share",
        type=float,
        default=0.3,
        help="--preference-loss sft: share of training tokens taken by the preferred texts (default 0.3)",
    )
    p.add_argument(
        "--dislike-weight",
        type=float,
        default=0.0,
        help="--preference-loss sft: also mix in the disliked/rejected texts and push their characters "
        "down with this weight (an unlikelihood term; default 0: liked texts only)",
    )
    p.add_argument(
        "--preference-min-temperature",
        type=float,
        help="with --preferences: learn only from KTO rows sampled at this temperature or hotter "
        "(rejection sampling for the temperature you serve at; default: all rows)",
    )
    p.add_argument(
        "--preference-loss",
        choices=("sft", "kto"),
        default="kto",
        help="with --preferences: kto (default) tunes by the KTO objective against the --init-from "
        "bundle, plus cross-entropy on the corpus; sft mixes the liked texts into the corpus",
    )
    p.add_argument("--kto-beta", type=float, default=0.1, help="with --preference-loss kto: β (default 0.1)")
    p.add_argument(
        "--kto-corpus-weight",
        type=float,
        default=4.0,
        help="with --preference-loss kto: weight of the corpus cross-entropy in each step (default 4)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train and report where the bundle is."""
    from train.loop import configure_environment

    configure_environment()
    from cli.bundles import bundle_corpus
    from core.bundle import BundleError
    from train.corpus import CorpusError
    from train.kto import OneSidedRows
    from train.loop import set_threads, train
    from train.preferences import PreferencesError
    from train.recipes import preset
    from train.run import TrainRun

    overrides = {
        key: getattr(args, key)
        for key in (
            "epochs",
            "hidden",
            "layers",
            "batch",
            "embedding_dim",
            "dropout",
            "learning_rate",
            "window",
            "max_vocab",
            "steps_per_epoch",
            "val_stride",
            "strategy",
            "precision",
            "ema",
        )
    }
    for key in (
        "epochs",
        "hidden",
        "layers",
        "batch",
        "window",
        "max_vocab",
        "steps_per_epoch",
        "val_stride",
    ):
        if overrides[key] is not None and overrides[key] < 1:
            raise CliError(f"--{key.replace('_', '-')} must be at least 1")
    if args.ema is not None and not 0 < args.ema < 1:
        raise CliError("--ema must be between 0 and 1, e.g. 0.995")
    if args.dropout is not None and not 0 <= args.dropout < 1:
        raise CliError("--dropout must be in [0, 1)")
    if args.preferences is not None and args.init_from is None:
        raise CliError("--preferences fine-tunes a model: give the bundle to start from with --init-from")
    if not 0 < args.preference_share < 1:
        raise CliError("--preference-share must be between 0 and 1")
    if args.dislike_weight < 0:
        raise CliError("--dislike-weight must be 0 or more")
    if not (math.isfinite(args.kto_beta) and args.kto_beta > 0):
        raise CliError("--kto-beta must be a positive number")
    if not (math.isfinite(args.kto_corpus_weight) and args.kto_corpus_weight >= 0):
        raise CliError("--kto-corpus-weight must be 0 or more")
    if args.preferences is not None and args.preference_loss == "kto" and args.dislike_weight > 0:
        raise CliError("--dislike-weight is for --preference-loss sft (KTO pushes disliked rows down itself)")
    if args.preferences is not None and args.preference_loss == "kto" and args.resume:
        raise CliError("--preference-loss kto cannot --resume: start the fine-tuning again")
    # None leaves the preset's choice; the flag only ever turns lower-casing off.
    overrides["lowercase"] = False if args.keep_case else None
    config = preset(args.recipe, args.level).with_overrides(**overrides)
    set_threads(args.threads)
    try:
        corpus = args.corpus or bundle_corpus(args.init_from)
        result = train(
            TrainRun(
                corpus,
                args.out,
                config,
                resume=args.resume,
                epochs=args.epochs,
                init_from=args.init_from,
                preferences=args.preferences,
                preference_share=args.preference_share,
                dislike_weight=args.dislike_weight,
                preference_min_temperature=args.preference_min_temperature,
                preference_loss=args.preference_loss,
                kto_beta=args.kto_beta,
                kto_corpus_weight=args.kto_corpus_weight,
                window=args.window,
            )
        )
    except OneSidedRows as exc:
        raise CliError(f"{exc} (for liked texts alone use --preference-loss sft)") from None
    except (CorpusError, FileNotFoundError, BundleError, PreferencesError) as exc:
        raise CliError(str(exc)) from None
    state = "interrupted" if result.interrupted else "finished"
    print(
        f"{state} after {result.epochs} epochs in {result.seconds / 60:.1f} min; "
        f"best held-out loss {result.best_loss:.4f} nats/token; bundle: {result.out}"
    )
    return 130 if result.interrupted else 0
