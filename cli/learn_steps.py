"""`lstmbot learn`'s work between the data and the verdict: the fine-tuning, both models
measured alike, and what is recorded and printed about them."""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cli import CliError
from cli.learn_round import Round
from train.distill import LEARNING_RATE
from train.gates import Gate, Measures
from train.lesson import Lesson

if TYPE_CHECKING:
    from core.bundle import Bundle
    from train.data import Split

PREFERENCES_FILE, REPORT_FILE = "preferences.jsonl", "learn.json"


@dataclass(frozen=True)
class Plan:
    """How a round fine-tunes: its corpus (a shipped name or a path) and its steps."""

    corpus: str
    steps: int


def fine_tune(args: argparse.Namespace, round_: Round, out: Path, plan: Plan) -> bool:
    """`lstmbot train --init-from CHAMPION --preferences FILE --preference-loss kto`, called as a
    function: one epoch of `plan.steps` steps. False: interrupted (Ctrl-C, SIGTERM)."""
    from train.loop import configure_environment

    configure_environment()
    from core.bundle import BundleError, load_bundle
    from train.corpus import CorpusError
    from train.loop import set_threads, train
    from train.preferences import PreferencesError
    from train.recipes import Level, preset
    from train.run import TrainRun

    champion = round_.champion
    level: Level = "word" if load_bundle(champion.folder).level == "word" else "char"
    config = preset("fast", level).with_overrides(
        epochs=1, steps_per_epoch=plan.steps, learning_rate=args.lr, val_stride=args.eval_stride
    )
    set_threads(args.threads)
    print(f"  fine-tuning {plan.steps} steps (KTO, lr {args.lr:g}) on {plan.corpus} into {out}")
    try:
        result = train(
            TrainRun(
                plan.corpus,
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
    return not result.interrupted


def find_lesson(args: argparse.Namespace, round_: Round, out: Path, plan: Plan) -> Lesson:
    """The sharpness the ratings of the champion's own samples ask for (train/lesson.py), kept
    within half the copy gate's margin as estimated on the gate's own samples of the champion."""
    from core.bundle import load_bundle
    from core.generator import Generator
    from core.novelty import NoveltyIndex
    from train.gates import Probe, draw
    from train.lesson import CopyProbe, fit, read_rated

    champion = load_bundle(round_.champion.folder, weights="lazy")
    rated = read_rated(out / PREFERENCES_FILE, round_.champion.version)
    generator = Generator(champion)
    if not rated:
        print("  no ratings of the champion's own samples: no lesson to look for")
        return fit(generator, rated)
    print(f"  looking for a lesson in the {len(rated)} ratings of the champion's own samples")
    split, prompts, _ = _book_and_prompts(plan, champion)
    index = NoveltyIndex(split.train)
    probe = Probe(samples=args.samples, temperature=args.temperature, stride=args.eval_stride)
    texts = draw(generator, prompts, probe)
    copied = np.array([1.0 - index.check(ids).new_ngram_share for ids in texts])
    window = champion.model.window
    contexts = [
        champion.tokenizer.encode_counted(prompts[i % len(prompts)]).ids[-window:] for i in range(len(texts))
    ]
    limit = float(copied.mean()) + args.copy_margin / 2
    lesson = fit(generator, rated, copying=CopyProbe(contexts, texts, probe.temperature, copied, limit))
    verdict = "worth a round" if lesson.worth_a_round else "not worth a round: KTO instead"
    print(f"    {lesson.describe()}: {verdict}")
    return lesson


def _book_and_prompts(plan: Plan, champion: Bundle) -> tuple[Split, list[str], str]:
    """The split the fine-tuning makes (its held-out part never trained on), the prompts the
    gates draw their samples from (the champion's seeds, else snippets of the book) and the
    book's name."""
    from train.corpus import load_corpus
    from train.data import seed_snippets, split_corpus
    from train.recipes import Level, TrainConfig

    level: Level = "word" if champion.level == "word" else "char"
    corpus = load_corpus(plan.corpus)
    split = split_corpus(corpus, TrainConfig(level=level, window=champion.model.window), champion.tokenizer)
    seeds = champion.meta.get("seeds")
    if isinstance(seeds, list) and seeds:
        return split, [str(seed) for seed in seeds], corpus.name
    return split, seed_snippets(corpus.text, champion.tokenizer), corpus.name


def teach(args: argparse.Namespace, round_: Round, out: Path, plan: Plan, lesson: Lesson) -> None:
    """Distil the lesson into a copy of the champion's weights (train/distill.py), into `out`."""
    from train.loop import configure_environment

    configure_environment()
    from core.bundle import load_bundle
    from train.corpus import load_corpus
    from train.data import split_corpus
    from train.distill import distil
    from train.loop import set_threads
    from train.recipes import Level, TrainConfig

    champion = load_bundle(round_.champion.folder)
    level: Level = "word" if champion.level == "word" else "char"
    split = split_corpus(
        load_corpus(plan.corpus), TrainConfig(level=level, window=champion.model.window), champion.tokenizer
    )
    set_threads(args.threads)
    print(
        f"  teaching it: {args.lesson_steps} steps of distillation from the champion on "
        f"{plan.corpus} into {out} (no KTO this round)"
    )
    distil(champion, lesson, np.asarray(split.train), out, name=args.model, steps=args.lesson_steps)


def measure_both(
    args: argparse.Namespace, round_: Round, out: Path, plan: Plan
) -> tuple[Measures, Measures, dict[str, Any]]:
    """Both models measured alike: the same held-out split, book, prompts, seeds and temperature."""
    from core.bundle import load_bundle
    from core.limits import default_length
    from core.novelty import NoveltyIndex
    from train.gates import DISTINCT_N, Probe, measure
    from train.recipes import Level

    champion, challenger = load_bundle(round_.champion.folder), load_bundle(out)
    if champion.tokenizer.tokens != challenger.tokenizer.tokens:
        raise CliError(f"{out}: the challenger's vocabulary is not the champion's; its gates cannot compare")
    level: Level = "word" if champion.level == "word" else "char"
    split, prompts, book = _book_and_prompts(plan, champion)
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
        "corpus": book,
    }
    ours = measure(champion, split, index, prompts, probe)
    theirs = measure(challenger, split, index, prompts, probe)
    return ours, theirs, measured


def lineage(
    args: argparse.Namespace,
    round_: Round,
    out: Path,
    plan: Plan,
    seconds: float,
    measured: dict[str, Any],
    champion: Measures,
    challenger: Measures,
    gates: list[Gate],
    lesson: Lesson | None = None,
) -> dict[str, Any]:
    """What the registry keeps with the version (and learn.json beside the bundle). `lesson`:
    the one looked for (None: --lesson off); taught instead of KTO where it was worth a round."""
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
            **(
                {"loss": "lesson", "steps": args.lesson_steps, "learning_rate": LEARNING_RATE}
                if lesson is not None and lesson.worth_a_round
                else {"loss": "kto", "steps": plan.steps, "learning_rate": args.lr}
            ),
            "corpus": plan.corpus,
            "seconds": round(seconds, 1),
            "lesson": lesson.as_dict() if lesson is not None else None,
        },
        "measured": measured,
        "champion": champion.as_dict(),
        "challenger": challenger.as_dict(),
        "gates": {gate.name: gate.as_dict() for gate in gates},
        "passed": all(gate.passed for gate in gates),
    }


def print_gates(gates: list[Gate], level: str) -> None:
    """The gates as a small table: each measure of both, its limit and the verdict."""
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
