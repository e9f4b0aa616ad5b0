"""`lstmbot learn MODEL`: one round of the learning loop, from the bot's database to a challenger.

1. The preferences gathered since the champion was made (cli/learn_round.py): ratings (KTO
   rows), duel votes and inline picks (DPO rows). Too few (MIN_ROWS), or only one verdict:
   refused (exit 2), saying how many there are.
2. A challenger fine-tuned from the champion's bundle by `lstmbot train --init-from
   --preferences`'s own code path (train.loop.train, KTO), into --out.
3. The gates (train/gates.py): held-out loss, copy rate, repetition, measured on both.
   Passed: published as the challenger (exit 0), and the bot's duels decide. Failed: stored in
   the registry as rejected with the reason (exit 3); the bundle folder is kept either way,
   with learn.json (what the registry's lineage holds) and the preferences file beside it.
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli import CliError

if TYPE_CHECKING:
    from cli.learn_round import Round
    from train.gates import Gate, Measures

MIN_ROWS = 50  # fewer preferences than this teach noise (bench/preferences.py used 900)
LEARN_DIR = Path("data") / "learn"
PREFERENCES_FILE, REPORT_FILE = "preferences.jsonl", "learn.json"
# bench/preferences.py's recipe: KTO at lr 6e-4, 16 rows a step, each row seen about once,
# at most 60 steps (900 ratings, 60 steps passed every run; docs/preferences-runs.md).
ROWS_PER_STEP, MAX_STEPS, LEARNING_RATE = 16, 60, 6e-4
EXIT_PUBLISHED, EXIT_REFUSED, EXIT_REJECTED = 0, 2, 3


def register(subparsers: Any) -> None:
    """Add the `learn` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "learn",
        help="fine-tune a challenger from the preferences gathered since the champion was made",
        description="One round of the learning loop: export the ratings, duel votes and inline "
        "picks gathered since MODEL's champion was made, fine-tune a challenger from the "
        "champion (KTO), check it against the champion (held-out loss, copying from the book, "
        "repetition) and publish it as the challenger, or store it as rejected. Exit status: "
        "0 published, 3 rejected, 2 refused (too little data, a challenger already in duels).",
    )
    p.add_argument("model", metavar="MODEL", help="the model's name, e.g. nietzsche-char")
    p.add_argument("--database-url", help="the bot's database (default: $DATABASE_URL)")
    p.add_argument(
        "--out", type=Path, help=f"the challenger's bundle folder (default: {LEARN_DIR}/MODEL-TIME)"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="gather and count the data, say what would be done, and stop"
    )
    p.add_argument(
        "--corpus", help="the book to keep and measure on (default: the champion's shipped corpus)"
    )
    p.add_argument(
        "--min-rows",
        type=int,
        default=MIN_ROWS,
        help=f"fewest preference rows to learn from (default {MIN_ROWS})",
    )
    p.add_argument(
        "--include-private",
        action="store_true",
        help="also learn from samples never shared, duels in private chats and inline picks never shared",
    )
    tune = p.add_argument_group("fine-tuning")
    tune.add_argument(
        "--steps",
        type=int,
        help=f"training steps (default: one pass over the rows, {ROWS_PER_STEP} a step, at most {MAX_STEPS})",
    )
    tune.add_argument(
        "--lr", type=float, default=LEARNING_RATE, help=f"learning rate (default {LEARNING_RATE})"
    )
    tune.add_argument("--threads", type=int, help="CPU threads for TensorFlow")
    gates = p.add_argument_group("gates")
    gates.add_argument("--samples", type=int, default=256, help="samples drawn from each model (default 256)")
    gates.add_argument("--temperature", type=float, default=0.5, help="their temperature (default 0.5)")
    gates.add_argument(
        "--eval-stride", type=int, default=20, help="held-out loss on every Nth token (default 20)"
    )
    gates.add_argument(
        "--max-loss-increase",
        type=float,
        default=0.03,
        help="held-out loss the challenger may add, nats/token (default 0.03)",
    )
    gates.add_argument(
        "--copy-margin",
        type=float,
        default=0.01,
        help="share of 8-grams from the book the challenger may add (default 0.01)",
    )
    gates.add_argument(
        "--min-distinct-ratio",
        type=float,
        default=0.9,
        help="distinct n-grams the challenger keeps, as a share of the champion's (default 0.9)",
    )
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    for flag in ("min_rows", "steps", "threads", "samples", "eval_stride"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise CliError(f"--{flag.replace('_', '-')} must be at least 1")
    for flag in ("lr", "max_loss_increase", "copy_margin", "min_distinct_ratio", "temperature"):
        if not math.isfinite(getattr(args, flag)):
            raise CliError(f"--{flag.replace('_', '-')} must be a number")
    if args.lr <= 0:
        raise CliError("--lr must be positive")
    if not 0 <= args.temperature <= 2:
        raise CliError("--temperature must be between 0 and 2")


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "the beginning"


def _data_line(round_: Round) -> str:
    g = round_.gathered
    return (
        f"{g.rows} preference rows since {_when(round_.champion.made)}: {g.ratings} rated samples "
        f"({g.liked} liked, {g.disliked} disliked), {g.duels} duels, {g.inline_picks} inline picks"
    )


def run(args: argparse.Namespace) -> int:
    """Run one round; 0: a challenger published, 3: rejected by its gates, 2: refused."""
    import asyncio

    from sqlalchemy import exc as sa_exc
    from sqlalchemy import make_url

    from bot.db.engine import is_sqlite, sqlite_file
    from bot.db.repository import RegistryError
    from bot.settings import get_settings
    from cli.export import preference_salt
    from cli.learn_round import gather
    from core.bundle import BundleError

    _check(args)
    url: str = args.database_url or get_settings().database_url
    shown = make_url(url).render_as_string(hide_password=True)
    path = sqlite_file(url) if is_sqlite(url) else None
    if path is not None and not path.exists():
        raise CliError(f"no database at {path}; run `lstmbot db upgrade` first")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out: Path = args.out or LEARN_DIR / f"{args.model}-{stamp}"
    if (out / "config.json").exists():
        raise CliError(f"{out} already holds a bundle: give another --out")
    with tempfile.TemporaryDirectory(prefix="lstmbot-learn-") as scratch:
        preferences = Path(scratch) / PREFERENCES_FILE
        try:
            round_ = asyncio.run(
                gather(
                    url,
                    args.model,
                    preferences,
                    cache=out.parent / "champions",
                    include_private=args.include_private,
                    salt=preference_salt(),
                )
            )
        except (RegistryError, BundleError) as exc:
            raise CliError(str(exc)) from None
        except sa_exc.DBAPIError as exc:
            hint = "; run `lstmbot db upgrade` first" if "model_versions" in str(exc) else ""
            raise CliError(f"cannot read the database at {shown}: {exc.orig}{hint}") from None
        steps = _refusal_or_steps(args, round_, preferences)
        if args.dry_run:
            return _dry_run(args, round_, out, steps)
        out.mkdir(parents=True, exist_ok=True)
        shutil.move(preferences, out / PREFERENCES_FILE)  # kept with the bundle: what it learned from
    return _learn(args, url, round_, out, steps)


def _refusal_or_steps(args: argparse.Namespace, round_: Round, preferences: Path) -> int:
    """The training steps this round takes, or CliError (exit 2) saying why it cannot run."""
    from train.kto import load_kto_rows
    from train.preferences import PreferencesError

    name, champion = args.model, round_.champion
    print(f"learn {name}: champion {champion.version} ({champion.source}), made {_when(champion.made)}")
    print(f"  {_data_line(round_)}")
    if round_.challenger is not None:
        raise CliError(
            f"{name} already has a challenger ({round_.challenger}) in duels: wait for its verdict, "
            f"or `lstmbot models reject {name} {round_.challenger}`"
        )
    if round_.gathered.rows < args.min_rows:
        raise CliError(
            f"too little data to learn from: {round_.gathered.rows} preference rows, "
            f"at least {args.min_rows} wanted (--min-rows)"
        )
    try:
        rows = load_kto_rows(preferences)
    except PreferencesError as exc:
        raise CliError(f"cannot learn from these rows: {exc}") from None
    return int(args.steps or min(MAX_STEPS, math.ceil(len(rows.rows) / ROWS_PER_STEP)))


def _dry_run(args: argparse.Namespace, round_: Round, out: Path, steps: int) -> int:
    print(
        f"dry run: would fine-tune {steps} steps (KTO, lr {args.lr:g}) from {round_.champion.folder} "
        f"into {out}, check the gates and publish or reject it; nothing written"
    )
    return EXIT_PUBLISHED


def _learn(args: argparse.Namespace, url: str, round_: Round, out: Path, steps: int) -> int:
    """Fine-tune, measure, judge, record, report."""
    import asyncio
    import json
    import time

    from bot.db.repository import RegistryError
    from cli.learn_round import record
    from train.gates import Limits, judge

    started = time.monotonic()
    corpus = _fine_tune(args, round_, out, steps)
    if corpus is None:
        print(f"interrupted: the partial bundle is in {out}; nothing was published")
        return 130
    trained_s = time.monotonic() - started
    champion, challenger, measured = _measure(args, round_, out, corpus)
    level = str(measured["level"])
    limits = Limits(args.max_loss_increase, args.copy_margin, args.min_distinct_ratio)
    gates = judge(champion, challenger, limits, unit=level)
    failed = [gate for gate in gates if not gate.passed]
    reason = "; ".join(gate.reason for gate in failed) or None
    lineage = _lineage(args, round_, out, steps, trained_s, corpus, measured, champion, challenger, gates)
    (out / REPORT_FILE).write_text(json.dumps(lineage, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _print_gates(gates, level)
    try:
        done = asyncio.run(record(url, args.model, out, lineage=lineage, reason=reason))
    except RegistryError as exc:
        raise CliError(f"{exc} (the bundle is kept in {out})") from None
    if reason:
        print(f"rejected {done.name} {done.version}: {reason}")
        print(f"  stored in the registry as rejected; bundle kept in {out}")
        return EXIT_REJECTED
    print(f"published {done.name} {done.version} as the challenger (bundle: {out})")
    print("  replicas load it within MODEL_POLL_S seconds; blind duels against the champion decide")
    return EXIT_PUBLISHED


def _fine_tune(args: argparse.Namespace, round_: Round, out: Path, steps: int) -> str | None:
    """`lstmbot train --init-from CHAMPION --preferences FILE --preference-loss kto`, one epoch of
    `steps` steps; the corpus trained on (None: interrupted)."""
    from train.loop import configure_environment

    configure_environment()
    from cli.bundles import bundle_corpus
    from core.bundle import BundleError, load_bundle
    from train.corpus import CorpusError
    from train.loop import set_threads, train
    from train.preferences import PreferencesError
    from train.recipes import Level, preset
    from train.run import TrainRun

    champion = round_.champion
    level: Level = "word" if load_bundle(champion.folder).level == "word" else "char"
    corpus = args.corpus or bundle_corpus(champion.folder)
    config = preset("fast", level).with_overrides(
        epochs=1, steps_per_epoch=steps, learning_rate=args.lr, val_stride=args.eval_stride
    )
    set_threads(args.threads)
    print(f"  fine-tuning {steps} steps (KTO, lr {args.lr:g}) on {corpus} into {out}")
    try:
        result = train(
            TrainRun(
                corpus,
                out,
                config,
                epochs=1,
                init_from=champion.folder,
                preferences=out / PREFERENCES_FILE,
                preference_loss="kto",
                name=args.model,
            )
        )
    except (CorpusError, FileNotFoundError, BundleError, PreferencesError) as exc:
        raise CliError(str(exc)) from None
    return None if result.interrupted else str(corpus)


def _measure(
    args: argparse.Namespace, round_: Round, out: Path, corpus_name: str
) -> tuple[Measures, Measures, dict[str, Any]]:
    """Both models measured alike: the same held-out split, book, prompts, seeds and temperature."""
    from core.bundle import load_bundle
    from core.limits import default_length
    from core.novelty import NoveltyIndex
    from train.corpus import load_corpus
    from train.data import seed_snippets, split_corpus
    from train.gates import DISTINCT_N, Probe, measure
    from train.recipes import Level, TrainConfig

    champion, challenger = load_bundle(round_.champion.folder), load_bundle(out)
    if champion.tokenizer.tokens != challenger.tokenizer.tokens:
        raise CliError(f"{out}: the challenger's vocabulary is not the champion's; its gates cannot compare")
    level: Level = "word" if champion.level == "word" else "char"
    corpus = load_corpus(corpus_name)
    # The split the fine-tuning made: its held-out part was never trained on by either.
    split = split_corpus(corpus, TrainConfig(level=level, window=champion.model.window), champion.tokenizer)
    seeds = champion.meta.get("seeds")
    prompts = (
        list(seeds) if isinstance(seeds, list) and seeds else seed_snippets(corpus.text, champion.tokenizer)
    )
    probe = Probe(samples=args.samples, temperature=args.temperature, stride=args.eval_stride)
    index = NoveltyIndex(split.train)
    print(
        f"  measuring both: held-out loss on every {probe.stride}th token, "
        f"{probe.samples} samples at T={probe.temperature:g}"
    )
    measured = {
        "samples": probe.samples,
        "temperature": probe.temperature,
        "length": default_length(level),
        "level": level,
        "seed": probe.seed,
        "prompts": len(prompts),
        "heldout_stride": probe.stride,
        "heldout_tokens": len(split.heldout),
        "distinct_n": DISTINCT_N[level],
        "corpus": corpus.name,
    }
    ours = measure(champion, split, index, prompts, probe)
    theirs = measure(challenger, split, index, prompts, probe)
    return ours, theirs, measured


def _lineage(
    args: argparse.Namespace,
    round_: Round,
    out: Path,
    steps: int,
    seconds: float,
    corpus: str,
    measured: dict[str, Any],
    champion: Measures,
    challenger: Measures,
    gates: list[Gate],
) -> dict[str, Any]:
    """What the registry keeps with the version (and learn.json beside the bundle)."""
    import hashlib

    prefs = (out / PREFERENCES_FILE).read_bytes()
    made = round_.champion.made
    return {
        "parent": round_.champion.version,
        "parent_source": round_.champion.source,
        "data": {
            "since": made.isoformat() if made else None,
            "until": round_.until.isoformat(),
            **round_.gathered.as_dict(),
            "include_private": args.include_private,
            "sha256": hashlib.sha256(prefs).hexdigest(),
        },
        "training": {
            "loss": "kto",
            "steps": steps,
            "learning_rate": args.lr,
            "corpus": corpus,
            "seconds": round(seconds, 1),
        },
        "measured": measured,
        "champion": champion.as_dict(),
        "challenger": challenger.as_dict(),
        "gates": {gate.name: gate.as_dict() for gate in gates},
        "passed": all(gate.passed for gate in gates),
    }


def _print_gates(gates: list[Gate], level: str) -> None:
    formats = {
        "heldout_loss": (f"held-out loss (nats/{level})", "{:.4f}", "≤"),
        "copy_rate": ("copy rate (8-grams from the book)", "{:.2%}", "≤"),
        "repetition": (f"distinct {'8-grams' if level == 'char' else '4-grams'}", "{:.2%}", "≥"),
    }
    print("  gates, challenger against champion:")
    for gate in gates:
        label, number, bound = formats[gate.name]
        verdict = "pass" if gate.passed else "FAIL"
        print(
            f"    {label:<36} {number.format(gate.challenger):>8} vs {number.format(gate.champion):>8}"
            f"  (limit {bound} {number.format(gate.limit)})  {verdict}"
        )
