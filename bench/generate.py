"""Generation speed: the book's loop and core's generator side by side, on the same weights.

    python -m bench.generate [--book-runs 1] [--runs 25] [--model DIR]

1. One 400-character sample at T=0.5 with the book's architecture (one-hot 60-char window,
   LSTM(128), softmax over 57 characters + unknown): the book's loop calls `model.predict` on a
   re-encoded window for every character; ours advances the LSTM state one step per character.
2. 64 concurrent 400-character requests generated as one batch: characters per second.
3. `lstmbot generate` from process start to the first sample, and its peak RSS, with the
   default model (TensorFlow is never imported on that path).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
SEED = "the will to truth, which is to tempt us to many a hazardous e"  # 60 characters


def book_sample(preds: np.ndarray, temperature: float) -> int:
    """The book's `sample` function, verbatim in spirit (float64, log, exp, multinomial)."""
    preds = np.asarray(preds).astype("float64")
    preds = np.log(preds) / temperature
    exp_preds = np.exp(preds)
    preds = exp_preds / np.sum(exp_preds)
    probas = np.random.multinomial(1, preds, 1)
    return int(np.argmax(probas))


def book_loop(model: object, tokenizer: object, seed: str, length: int, temperature: float) -> str:
    """The book's generation loop: re-encode the last 60 characters and predict, per character."""
    window = 60
    vocab = tokenizer.tokens  # type: ignore[attr-defined]
    index = {ch: i for i, ch in enumerate(vocab)}
    generated = seed
    out = []
    for _ in range(length):
        x = np.zeros((1, window, len(vocab)), dtype=np.float32)
        for t, char in enumerate(generated[-window:]):
            x[0, t, index.get(char, 0)] = 1.0
        preds = model.predict(x, verbose=0)[0]  # type: ignore[attr-defined]
        with np.errstate(divide="ignore"):
            next_char = vocab[book_sample(preds, temperature)]
        generated += next_char
        out.append(next_char)
    return "".join(out)


def build_book_bundle(folder: Path) -> Path:
    """The book's model (random weights: speed does not depend on their values) as a bundle."""
    from core.bundle import save_bundle
    from core.config import book_char_config
    from core.keras_model import build_model, get_named_weights
    from core.tokenizers import CharTokenizer
    from train.corpus import load_corpus

    tokenizer = CharTokenizer.fit(load_corpus("nietzsche").text)
    config = book_char_config(tokenizer.vocab_size)
    model = build_model(config)
    return save_bundle(
        folder / "book-char", model=config, tokenizer=tokenizer, weights=get_named_weights(model, config)
    )


def time_startup(model: str | None) -> tuple[float, float, str]:
    """Wall time and peak RSS (MB) of `lstmbot generate` printing one 400-char sample."""
    import psutil

    cmd = [
        sys.executable,
        "-m",
        "cli",
        "generate",
        "the will to truth",
        "-t",
        "0.5",
        "-n",
        "400",
        "--seed",
        "1",
    ]
    if model:
        cmd += ["--model", model]
    started = time.perf_counter()
    proc = psutil.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, proc.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.005)
    wall = time.perf_counter() - started
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"lstmbot generate failed: {err.decode()}")
    # ru_maxrss of waited-for children is exact, provided this process was still small when it
    # forked (a child starts with its parent's RSS until exec): main() measures this first.
    import resource

    child_peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, child_peak_kb * 1024) / 2**20, out.decode().splitlines()[0]


def main() -> None:
    """Run the three measurements and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--book-runs", type=int, default=1, help="runs of the book's loop (~47 s each)")
    parser.add_argument("--runs", type=int, default=25, help="runs of our generator")
    parser.add_argument("--model", help="model for the start-up test (default: the shipped one)")
    args = parser.parse_args()
    wall, rss, first_line = time_startup(args.model)  # before this process imports TensorFlow

    from core.bundle import load_bundle
    from core.generator import Generator, Request
    from core.keras_model import build_model, set_named_weights

    with tempfile.TemporaryDirectory() as tmp:
        path = build_book_bundle(Path(tmp))
        bundle = load_bundle(path)
        model = build_model(bundle.model)
        set_named_weights(model, dict(bundle.weights))
        generator = Generator(bundle)

        book_times = []
        for run in range(args.book_runs):
            np.random.seed(run)
            started = time.perf_counter()
            book_loop(model, bundle.tokenizer, SEED, 400, 0.5)
            book_times.append(time.perf_counter() - started)

        ours_times = []
        for run in range(args.runs):
            started = time.perf_counter()
            generator.generate_one(Request(SEED, length=400, temperature=0.5, rng=run))
            ours_times.append(time.perf_counter() - started)

        batch = [Request(SEED, length=400, temperature=0.5, rng=i) for i in range(64)]
        generator.generate(batch)  # warm-up
        batch_times = []
        for _ in range(5):
            started = time.perf_counter()
            generator.generate(batch)
            batch_times.append(time.perf_counter() - started)

    book_med, ours_med = statistics.median(book_times), statistics.median(ours_times)
    book_batch_rate = 400 / book_med  # the book's loop has no batching: one request at a time
    ours_batch_rate = 64 * 400 / statistics.median(batch_times)

    print("Generation: the book's loop vs core.Generator, same LSTM(128) weights, 58-token vocabulary")
    print(f"{'measurement':<44}{'book':>14}{'ours':>14}{'ratio':>12}")
    print(
        f"{'one 400-char sample at T=0.5, median':<44}{book_med * 1000:>11.0f} ms{ours_med * 1000:>11.1f} ms"
        f"{book_med / ours_med:>11.0f}x"
    )
    print(
        f"{'64 requests x 400 chars, chars/s':<44}{book_batch_rate:>14,.0f}{ours_batch_rate:>14,.0f}"
        f"{ours_batch_rate / book_batch_rate:>11.0f}x"
    )
    print(f"{'lstmbot generate: start to first sample':<44}{'':>14}{wall:>12.2f} s")
    print(f"{'lstmbot generate: peak RSS':<44}{'':>14}{rss:>11.0f} MB")
    print(f"(book runs: {args.book_runs}, our runs: {args.runs}; start-up model line: {first_line!r})")


if __name__ == "__main__":
    main()
