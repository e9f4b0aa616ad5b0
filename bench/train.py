"""Training speed: the book's recipe and the fast one, same LSTM(128), same split, same metric.

    python -m bench.train [--budget-min 10] [--eval-every-s 30] [--stride 10]

Each recipe trains in its own process (so peak memory is its own) for the same wall-clock
budget. Every `--eval-every-s` seconds of training the held-out loss (60-token context ->
next token, last 10% of nietzsche.txt, every `--stride`-th target) is measured; time spent
measuring is not counted as training time. Printed: both curves, the loss each reaches, how
long `fast` needs to reach the loss `book` ends with, the ratio, and peak RSS of each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def worker(recipe: str, budget_s: float, eval_every_s: float, stride: int) -> None:
    """Train one recipe for `budget_s` seconds, printing one JSON line per evaluation."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from core.keras_model import build_model
    from train.build import model_config_for, optimizer_for
    from train.callbacks import generator_from_model
    from train.corpus import load_corpus
    from train.data import split_corpus, training_dataset
    from train.evaluate import heldout_metrics
    from train.recipes import preset

    config = preset(recipe, "char")  # type: ignore[arg-type]
    if recipe == "fast":
        config = config.with_overrides(hidden=128, layers=1)  # the book's size, for a fair race
    split = split_corpus(load_corpus("nietzsche"), config)
    model_config = model_config_for(config, split.tokenizer.vocab_size)
    model = build_model(model_config)
    model.compile(optimizer=optimizer_for(config), loss="sparse_categorical_crossentropy")
    dataset = training_dataset(split.train, config, split.tokenizer.vocab_size).repeat()

    class Budget(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.trained = 0.0
            self.mark = time.monotonic()
            self.next_eval = eval_every_s
            self.steps = 0

        def evaluate(self) -> None:
            generator = generator_from_model(self.model, model_config, split.tokenizer)
            metrics = heldout_metrics(
                generator, split.heldout, heldout_chars=split.heldout_chars, stride=stride
            )
            print(
                json.dumps(
                    {"t": round(self.trained, 1), "loss": metrics.nats_per_token, "steps": self.steps}
                ),
                flush=True,
            )

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            now = time.monotonic()
            self.trained += now - self.mark
            self.steps += 1
            if self.trained >= self.next_eval or self.trained >= budget_s:
                self.evaluate()
                self.next_eval += eval_every_s
                if self.trained >= budget_s:
                    self.model.stop_training = True
            self.mark = time.monotonic()  # evaluation time is not training time

    model.fit(dataset, epochs=1_000_000, steps_per_epoch=100, callbacks=[Budget()], verbose=0)


def run_recipe(recipe: str, args: argparse.Namespace) -> tuple[list[dict[str, float]], float]:
    """Run a worker process; return its curve and peak RSS in MB."""
    cmd = [
        sys.executable,
        "-m",
        "bench.train",
        "--worker",
        recipe,
        "--budget-min",
        str(args.budget_min),
        "--eval-every-s",
        str(args.eval_every_s),
        "--stride",
        str(args.stride),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{recipe} worker failed:\n{proc.stderr[-3000:]}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    curve = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    # ru_maxrss of children is the largest child so far; workers run one after the other.
    return curve, max(peak_kb, before) / 1024


def time_to_reach(curve: list[dict[str, float]], loss: float) -> float | None:
    """When the curve first gets down to `loss`, interpolated between evaluations."""
    previous: dict[str, float] | None = None
    for point in curve:
        if point["loss"] <= loss:
            if previous is None or previous["loss"] == point["loss"]:
                return point["t"]
            share = (previous["loss"] - loss) / (previous["loss"] - point["loss"])
            return previous["t"] + share * (point["t"] - previous["t"])
        previous = point
    return None


def main() -> None:
    """Race both recipes and print the comparison."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget-min", type=float, default=10.0, help="training minutes per recipe")
    parser.add_argument(
        "--eval-every-s", type=float, default=30.0, help="seconds of training between evaluations"
    )
    parser.add_argument("--stride", type=int, default=10, help="score every Nth held-out character")
    parser.add_argument("--worker", choices=("book", "fast"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.budget_min * 60, args.eval_every_s, args.stride)
        return

    fast, fast_rss = run_recipe("fast", args)  # fast first: its RSS is then measured on its own
    book, book_rss = run_recipe("book", args)
    print(
        f"Training: book vs fast recipe, LSTM(128), {args.budget_min:g} min each, held-out nats/char "
        f"(every {args.stride}th target of the last 10%)"
    )
    print(f"{'train s':>8} {'book':>8} {'fast':>8}")
    for b, f in zip(book, fast, strict=False):
        print(f"{b['t']:>8.0f} {b['loss']:>8.4f} {f['loss']:>8.4f}")
    book_final, fast_final = book[-1]["loss"], fast[-1]["loss"]
    reach = time_to_reach(fast, book_final)
    print(
        f"final held-out loss: book {book_final:.4f}, fast {fast_final:.4f} nats/char "
        f"({'fast lower' if fast_final < book_final else 'book lower'})"
    )
    if reach is None:
        print(f"fast never reached book's final {book_final:.4f} within the budget")
    else:
        print(
            f"fast reaches book's final loss after {reach:.0f} s of {book[-1]['t']:.0f} s: "
            f"{reach / book[-1]['t']:.3f} of the time ({book[-1]['t'] / max(reach, 1e-9):.1f}x faster)"
        )
    print(f"peak RSS: book {book_rss:.0f} MB, fast {fast_rss:.0f} MB (each in its own process)")


if __name__ == "__main__":
    main()
