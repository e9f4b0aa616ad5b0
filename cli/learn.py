"""`lstmbot learn MODEL`: one round of the learning loop, from the bot's database to a challenger.

1. The preferences gathered since the champion was made (cli/learn_round.py): ratings (KTO
   rows), duel votes and inline picks (DPO rows). Too few (MIN_ROWS), or only one verdict:
   refused (exit 2), saying how many there are.
2. A challenger, into --out. First the ratings of the champion's own samples are asked whether
   they want it sharper or softer (train/lesson.py): where that lesson promises half as many
   likes again, confidently, it is distilled into a copy of the champion (train/distill.py);
   otherwise the challenger is fine-tuned from the champion's bundle by `lstmbot train
   --init-from --preferences`'s own code path (train.loop.train, KTO).
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
    from cli.learn_steps import Plan

MIN_ROWS = 50  # fewer preferences than this teach noise (bench/preferences.py used 900)
LEARN_DIR = Path("data") / "learn"
# bench/preferences.py's recipe: KTO at lr 6e-4, 16 rows a step, each row seen about once,
# at most 60 steps (900 ratings, 60 steps passed every run; docs/preferences-runs.md).
ROWS_PER_STEP, MAX_STEPS, LEARNING_RATE = 16, 60, 6e-4
LESSON_STEPS = 200  # train/distill.py's STEPS (not imported: every command would load numpy)
EXIT_PUBLISHED, EXIT_REJECTED = 0, 3  # a refusal is a CliError: exit status 2


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
        "--dry-run",
        action="store_true",
        help="gather and count the data, say what would be done, and stop (nothing trained or published)",
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
    tune.add_argument(
        "--lesson",
        choices=("auto", "off"),
        default="auto",
        help="auto: teach the sharpness the ratings ask for when it is worth a round, else KTO "
        "(default); off: always KTO",
    )
    tune.add_argument(
        "--lesson-steps",
        type=int,
        default=LESSON_STEPS,
        help=f"distillation steps when a lesson is taught (default {LESSON_STEPS})",
    )
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
    for flag in ("min_rows", "steps", "threads", "samples", "eval_stride", "lesson_steps"):
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
    from cli.learn_steps import PREFERENCES_FILE
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
        plan = _plan_or_refusal(args, round_, preferences)
        if args.dry_run:
            return _dry_run(args, round_, out, plan)
        out.mkdir(parents=True, exist_ok=True)
        shutil.move(preferences, out / PREFERENCES_FILE)  # kept with the bundle: what it learned from
    return _learn(args, url, round_, out, plan)


def _plan_or_refusal(args: argparse.Namespace, round_: Round, preferences: Path) -> Plan:
    """The round's corpus and steps, or CliError (exit 2) saying why it cannot run."""
    from cli.bundles import bundle_corpus
    from cli.learn_steps import Plan
    from train.corpus import CorpusError, load_corpus
    from train.kto import OneSidedRows, load_kto_rows
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
    except OneSidedRows as exc:  # said without the temporary file's name, which is gone
        kind = "none" if exc.liked is None else f"all {exc.count} {'liked' if exc.liked else 'disliked'}"
        raise CliError(
            f"cannot learn from these rows ({kind}): a round needs both likes and dislikes; "
            "wait for more ratings"
        ) from None
    except PreferencesError as exc:
        raise CliError(f"cannot learn from these rows: {exc}") from None
    corpus = args.corpus or bundle_corpus(champion.folder)
    try:
        load_corpus(corpus)  # a missing or unreadable book is refused before anything is written
    except CorpusError as exc:
        raise CliError(str(exc)) from None
    return Plan(corpus, int(args.steps or min(MAX_STEPS, math.ceil(len(rows.rows) / ROWS_PER_STEP))))


def _dry_run(args: argparse.Namespace, round_: Round, out: Path, plan: Plan) -> int:
    first = "look for a lesson in the ratings, then teach it or " if args.lesson == "auto" else ""
    print(
        f"dry run: would {first}fine-tune {plan.steps} steps (KTO, lr {args.lr:g}) "
        f"from {round_.champion.folder} on {plan.corpus} into {out}, check the gates and publish "
        "or reject it; nothing trained or published"
    )
    return EXIT_PUBLISHED


def _learn(args: argparse.Namespace, url: str, round_: Round, out: Path, plan: Plan) -> int:
    """Fine-tune, measure, judge, record, report."""
    import asyncio
    import json
    import time

    from bot.db.repository import RegistryError
    from cli.learn_round import record
    from cli.learn_steps import (
        REPORT_FILE,
        find_lesson,
        fine_tune,
        lineage,
        measure_both,
        print_gates,
        teach,
    )
    from train.gates import Limits, judge

    started = time.monotonic()
    lesson = find_lesson(args, round_, out, plan) if args.lesson == "auto" else None
    if lesson is not None and lesson.worth_a_round:
        teach(args, round_, out, plan, lesson)
    elif not fine_tune(args, round_, out, plan):
        print(f"interrupted: the partial bundle is in {out}; nothing was published")
        return 130
    trained_s = time.monotonic() - started
    champion, challenger, measured = measure_both(args, round_, out, plan)
    level = str(measured["level"])
    limits = Limits(args.max_loss_increase, args.copy_margin, args.min_distinct_ratio)
    gates = judge(champion, challenger, limits, unit=level)
    reason = "; ".join(gate.reason for gate in gates if not gate.passed) or None
    recorded = lineage(args, round_, out, plan, trained_s, measured, champion, challenger, gates, lesson)
    (out / REPORT_FILE).write_text(
        json.dumps(recorded, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print_gates(gates, level)
    try:
        done = asyncio.run(record(url, args.model, out, lineage=recorded, reason=reason))
    except RegistryError as exc:
        raise CliError(f"{exc} (the bundle is kept in {out})") from None
    if reason:
        print(f"rejected {done.name} {done.version}: {reason}")
        print(f"  stored in the registry as rejected; bundle kept in {out}")
        return EXIT_REJECTED
    print(f"published {done.name} {done.version} as the challenger (bundle: {out})")
    print("  replicas load it within MODEL_POLL_S seconds; blind duels against the champion decide")
    return EXIT_PUBLISHED
