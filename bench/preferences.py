"""Do the ratings teach? Two checks against the real bot, through the sandbox.

    python -m bench.preferences recover [--votes 400] [--voters 20]
    python -m bench.preferences loop [--taste theme|vocabulary] [--samples 900] [--length 400]
        [--rate-temperatures 1.0] [--like-at N]
        [--steps 60] [--lr 6e-4] [--duels 200] [--kto FILE]
        [--share 0.3] [--dislike-weight 0] [--min-temperature T]
        [--loss kto|sft] [--beta 0.1] [--corpus-weight 4]

recover: simulated voters with known, hidden arm strengths vote on /duel messages (they read
which arm is which from the database, as the voter's taste would "see" it); the leaderboard
fitted from their counted votes must put the arms in the true order (Kendall tau 1) with
every 95% interval covering the true (centred) strength.

loop: a scripted rater with a stated taste rates samples from the bot with 👍/👎; the KTO
export of those ratings fine-tunes the model (`lstmbot train --init-from ... --preferences
...`); then the bot, serving base and tuned models as the only two duel arms, writes duels
that the same rater judges. The tuned bundle should win more than 60% of them, while its
held-out loss worsens by at most 0.03 nats/char. Both figures are printed.

The default rater (`--taste theme`) likes religion and morality: it counts 24 favourite
words (THEME_WORDS), likes a sample that uses at least two, and in a duel prefers the text
that uses more of them (equal counts tie). Its taste is not a temperature: the base model
uses as many favourite words at T=0.5, 1.0 and 1.2, and a colder model does not win its
duels (docs/preferences-runs.md), so what the loop gains, /temp cannot give. The second rater,
`--taste vocabulary`, likes words found in the corpus and no repeated three-word phrases;
that taste is mostly won by a colder model.

The default recipe: samples and duels of 400 characters, 900 ratings at T=1.0, then KTO for
60 steps at lr 6e-4 with the corpus term at weight 4. Why these, and every run made so far
with its figures, are in docs/preferences-runs.md; add a new run's record there.

The same functions run at small sizes in tests/e2e/test_preference_bench.py.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.database import Database
from bot.db.models import Chat, Duel, StoredSample
from bot.db.outcomes import Outcome
from bot.db.preference_export import write_preferences
from bot.ranking import ArmStrength, leaderboard
from bot.standings import load_votes
from core.limits import default_length
from sandbox.testing import SandboxServer

ROOT = Path(__file__).resolve().parent.parent
Json = dict[str, Any]
DUEL_DATA = re.compile(r"d:(\d+):a")
WORD = re.compile(r"[a-z]+")
# Seconds to wait for one reply: generous, because on a shared machine these long runs may be
# paused (SIGSTOP) for minutes by other benchmarks, and a wall-clock wait would then fail a
# run that is fine (two runs on 2026-11-26 died so).
PATIENCE = 1200.0


def arm_label(model: str, temperature: float) -> str:
    """The leaderboard's name for an arm (as bot.db.repository.duels.Arm.label)."""
    return f"{model}@{temperature:g}"


def centred(strengths: dict[str, float]) -> dict[str, float]:
    """Strengths shifted to mean 0, as the leaderboard reports them."""
    mean = sum(strengths.values()) / len(strengths)
    return {arm: value - mean for arm, value in strengths.items()}


def duel_id_of(message: Json) -> int:
    """The duel id in a duel message's buttons."""
    for row in message.get("reply_markup", {}).get("inline_keyboard", []):
        for button in row:
            match = DUEL_DATA.fullmatch(str(button.get("callback_data", "")))
            if match:
                return int(match[1])
    raise LookupError("not a duel message")


async def load_duel(db: Database, duel_id: int) -> Duel:
    """The stored duel (what a voter's eyes would judge: its two texts and, here, its arms)."""

    async def work(session: AsyncSession) -> Duel | None:
        return await session.get(Duel, duel_id)

    duel = await db.run(work, write=False)
    if duel is None:
        raise LookupError(f"duel {duel_id} not stored")
    return duel


async def duel_once(sb: SandboxServer, user: Json, seed: str = "", *, timeout: float = PATIENCE) -> Json:
    """Ask for a duel in the user's private chat and return the duel message."""
    chat_id = int(user["id"])
    before = len(sb.bot_messages(chat_id))
    sb.send(user, chat_id, f"/duel {seed}".strip())
    (reply,) = await sb.wait_for_bot_messages(chat_id, after=before, timeout=timeout)
    if "reply_markup" not in reply:
        raise RuntimeError(f"no duel: {reply.get('text')!r}")
    return reply


async def vote(sb: SandboxServer, user: Json, message: Json, outcome: Outcome) -> str:
    """Press the button for `outcome` and return the answer's text."""
    code = {"a": "a", "b": "b", "tie": "t", "bad": "x"}[outcome.value]
    query = sb.press(user, message, f"d:{duel_id_of(message)}:{code}")
    answer = await sb.wait_for_answer(query, timeout=PATIENCE)
    return str(answer.get("text") or "")


async def set_length(sb: SandboxServer, user: Json, length: int) -> None:
    """Short samples keep the benchmark about votes, not about generation time."""
    before = len(sb.bot_messages(int(user["id"])))
    sb.send(user, int(user["id"]), f"/length {length}")
    await sb.wait_for_bot_messages(int(user["id"]), after=before, timeout=PATIENCE)


async def set_temperature(sb: SandboxServer, user: Json, temperature: float) -> None:
    """The user's own /temp: the temperature of their samples and of their challenger duels."""
    before = len(sb.bot_messages(int(user["id"])))
    sb.send(user, int(user["id"]), f"/temp {temperature:g}")
    await sb.wait_for_bot_messages(int(user["id"]), after=before, timeout=PATIENCE)


# -- (a) recovering known strengths ----------------------------------------------------------


@dataclass(frozen=True)
class Recovery:
    """How well the leaderboard found the hidden strengths."""

    board: list[ArmStrength]
    truth: dict[str, float]  # centred
    votes: int
    tau: float
    covered: int  # arms whose 95% interval holds the true strength
    seconds: float

    def report(self) -> str:
        """The figures, one line per arm."""
        lines = [
            f"{self.votes} counted votes in {self.seconds:.0f} s; Kendall tau {self.tau:.3f}; "
            f"{self.covered}/{len(self.board)} intervals cover the true strength"
        ]
        for row in self.board:
            mark = "ok" if row.low <= self.truth[row.arm] <= row.high else "MISS"
            lines.append(
                f"  {row.arm:>22}  true {self.truth[row.arm]:+.2f}  fit {row.strength:+.2f} "
                f"[{row.low:+.2f}, {row.high:+.2f}]  {mark}"
            )
        return "\n".join(lines)


async def simulate_voters(
    sb: SandboxServer,
    db: Database,
    strengths: dict[str, float],
    *,
    votes: int,
    voters: int,
    seed: int = 0,
    length: int = 20,
) -> int:
    """`voters` users each ask for duels and vote by Bradley-Terry odds until `votes` are cast."""
    rng = np.random.default_rng(seed)
    users = [sb.user(f"Voter {i}") for i in range(voters)]
    await asyncio.gather(*(set_length(sb, user, length) for user in users))
    left = votes

    async def one(user: Json) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            message = await duel_once(sb, user)
            duel = await load_duel(db, duel_id_of(message))
            a = strengths[arm_label(duel.model_a, duel.temperature_a)]
            b = strengths[arm_label(duel.model_b, duel.temperature_b)]
            p_a = 1 / (1 + math.exp(b - a))
            await vote(sb, user, message, Outcome.A if rng.random() < p_a else Outcome.B)

    await asyncio.gather(*(one(user) for user in users))
    return votes


async def recover(
    sb: SandboxServer, db: Database, strengths: dict[str, float], *, votes: int, voters: int, seed: int = 0
) -> Recovery:
    """Vote, then fit the leaderboard from the bot's database and compare with the truth."""
    started = time.monotonic()
    await simulate_voters(sb, db, strengths, votes=votes, voters=voters, seed=seed)
    counted, _ = await db.run(load_votes, write=False)
    board = await asyncio.to_thread(leaderboard, counted, sorted(strengths), rng=np.random.default_rng(seed))
    truth = centred(strengths)
    arms = sorted(truth)
    fitted = {row.arm: row.strength for row in board}
    tau = float(kendalltau([truth[a] for a in arms], [fitted[a] for a in arms]).statistic)
    covered = sum(row.low <= truth[row.arm] <= row.high for row in board)
    return Recovery(board, truth, len(counted), tau, covered, time.monotonic() - started)


# -- (b) closing the loop --------------------------------------------------------------------


def vocabulary(corpus_text: str) -> frozenset[str]:
    """The words of the corpus (lower case)."""
    return frozenset(WORD.findall(corpus_text.lower()))


# The theme rater's favourite words: religion and morality, as the corpus speaks of them. Not
# "soul", "spirit" or "conscience": the base model's cold samples loop on those, which would
# make the theme a temperature preference again. With this list the base model uses one in
# 5% of its 120-character samples at T=0.2 (stock phrases) and in about 30% at T=0.5, 1.0
# and 1.2 alike.
THEME_WORDS = frozenset({
    "god", "gods", "religion", "religious", "faith", "belief", "believe", "christian", "christianity",
    "church", "saint", "holy", "sin", "divine", "morality", "moral", "morals", "virtue", "virtues",
    "good", "evil", "truth", "love", "sympathy",
})  # fmt: skip


def judged_words(text: str) -> list[str]:
    """The text's words (lower case), less a last word cut mid-word by the length limit."""
    words = WORD.findall(text.lower())
    if words and text[-1:].isalpha():
        words = words[:-1]
    return words


def taste(text: str, vocab: frozenset[str]) -> float:
    """The scripted rater's score: share of words in the corpus vocabulary, minus the share of
    three-word phrases that repeat one seen earlier in the text. Higher is better."""
    words = judged_words(text)
    if not words:
        return 0.0
    known = sum(word in vocab for word in words) / len(words)
    trigrams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    repeated = (len(trigrams) - len(set(trigrams))) / len(trigrams) if trigrams else 0.0
    return known - repeated


def theme(text: str, vocab: frozenset[str], favourites: frozenset[str] = THEME_WORDS) -> float:
    """The theme rater's score: how many of its favourite words the text uses. (`vocab` is
    unused: every taste takes it.) No tie-breaker: duels with equal counts are ties, because
    any measure of fluency as a tie-breaker would again reward a colder temperature."""
    del vocab
    return float(sum(word in favourites for word in judged_words(text)))


TASTES: dict[str, tuple[Callable[[str, frozenset[str]], float], float]] = {
    # name: (score, the score from which the rater likes a sample)
    "vocabulary": (taste, 0.95),
    # At least two favourite words: about the top 30% of the base model's 400-character
    # samples at T=1.0 (it uses 1.2 on average, and none in about a quarter of them).
    "theme": (theme, 2.0),
}


async def rate_samples(
    sb: SandboxServer,
    db: Database,
    judge: Callable[[str], float],
    *,
    samples: int,
    temperatures: tuple[float, ...],
    like_at: float,
    length: int,
) -> tuple[int, int]:
    """The rater asks for `samples` samples (cycling temperatures) and rates each; (👍, 👎)."""
    rater = sb.user("Rater")
    chat_id = int(rater["id"])
    await set_length(sb, rater, length)
    liked = disliked = 0
    for i in range(samples):
        if i % max(1, samples // len(temperatures)) == 0:
            before = len(sb.bot_messages(chat_id))
            sb.send(rater, chat_id, f"/temp {temperatures[(i * len(temperatures)) // samples]}")
            await sb.wait_for_bot_messages(chat_id, after=before, timeout=PATIENCE)
        before = len(sb.bot_messages(chat_id))
        sb.send(rater, chat_id, "/gen")
        (reply,) = await sb.wait_for_bot_messages(chat_id, after=before, timeout=PATIENCE)
        message_id = int(reply["message_id"])

        async def work(session: AsyncSession, message_id: int = message_id) -> str | None:
            # Message ids count per chat: the sample is the one sent as this message in this chat
            # (by message id alone, a later round's rater got an earlier round's texts).
            stmt = (
                select(StoredSample.text)
                .join(Chat, Chat.id == StoredSample.chat_id)
                .where(StoredSample.telegram_message_id == message_id, Chat.telegram_id == chat_id)
            )
            found = await session.scalar(stmt)
            return None if found is None else str(found)

        # The bot records the message id just after sending: wait for it.
        text: str | None = None
        for _ in range(200):
            text = await db.run(work, write=False)
            if text is not None:
                break
            await asyncio.sleep(0.05)
        if text is None:
            raise RuntimeError(f"sample of message {message_id} was never recorded")
        good = judge(text) >= like_at
        liked, disliked = liked + good, disliked + (not good)
        await sb.wait_for_answer(sb.press(rater, reply, button="👍" if good else "👎"), timeout=PATIENCE)
    return liked, disliked


async def export_kto(db: Database, path: Path) -> int:
    """The rater's ratings as a KTO file (their own private chat: --include-private)."""
    out = io.StringIO()

    async def work(session: AsyncSession) -> int:
        return await write_preferences(session, out, format="kto", include_private=True)

    count = await db.run(work, write=False)
    await asyncio.to_thread(path.write_text, out.getvalue(), encoding="utf-8")
    return int(count)


def fine_tune(
    base: Path,
    preferences: Path,
    out: Path,
    *,
    steps: int,
    val_stride: int,
    threads: int,
    lr: float,
    share: float = 0.3,
    dislike_weight: float = 0.0,
    min_temperature: float | None = None,
    loss: str = "kto",
    beta: float = 0.1,
    corpus_weight: float = 4.0,
) -> float:
    """`lstmbot train --init-from base --preferences ...` for one short epoch; its seconds."""
    started = time.monotonic()
    command = [
        sys.executable, "-m", "cli", "train", "--init-from", str(base), "--preferences", str(preferences),
        "--epochs", "1", "--steps-per-epoch", str(steps), "--val-stride", str(val_stride),
        "--threads", str(threads), "--lr", str(lr), "--out", str(out),
        "--preference-share", str(share), "--dislike-weight", str(dislike_weight),
    ]  # fmt: skip
    if min_temperature is not None:
        command += ["--preference-min-temperature", str(min_temperature)]
    command += ["--preference-loss", loss]
    if loss == "kto":
        command += ["--kto-beta", str(beta), "--kto-corpus-weight", str(corpus_weight)]
    subprocess.run(command, cwd=ROOT, check=True)
    return time.monotonic() - started


def heldout_loss(bundle_dir: Path, stride: int) -> float:
    """Held-out cross-entropy (nats per character) on the bundle's own corpus split."""
    from core.bundle import load_bundle
    from core.generator import Generator
    from train.corpus import load_corpus
    from train.data import split_corpus
    from train.evaluate import heldout_metrics
    from train.recipes import TrainConfig

    bundle = load_bundle(bundle_dir)
    corpus = load_corpus(str(bundle.meta["corpus"]["name"]))
    config = TrainConfig(level="char", window=bundle.model.window, heldout_fraction=0.1)
    split = split_corpus(corpus, config, bundle.tokenizer)
    metrics = heldout_metrics(
        Generator(bundle), split.heldout, heldout_chars=split.heldout_chars, stride=stride
    )
    return float(metrics.nats_per_token)


async def judge_duels(
    sb: SandboxServer, db: Database, judge: Callable[[str], float], *, duels: int, tuned: str, length: int
) -> tuple[int, int, int]:
    """The rater judges duels between the two loaded models: (tuned wins, base wins, ties)."""
    rater = sb.user("Judge")
    await set_length(sb, rater, length)
    wins = losses = ties = 0
    for _ in range(duels):
        message = await duel_once(sb, rater)
        duel = await load_duel(db, duel_id_of(message))
        score_a, score_b = judge(duel.text_a), judge(duel.text_b)
        outcome = Outcome.TIE if score_a == score_b else (Outcome.A if score_a > score_b else Outcome.B)
        await vote(sb, rater, message, outcome)
        if outcome is Outcome.TIE:
            ties += 1
        elif (outcome is Outcome.A) == (duel.model_a == tuned):
            wins += 1
        else:
            losses += 1
    return wins, losses, ties


# -- the command line ------------------------------------------------------------------------

BENCH_STRENGTHS = {0.2: 1.2, 0.5: 0.6, 0.8: 0.0, 1.0: -0.6, 1.2: -1.2}


async def main_recover(votes: int, voters: int) -> int:
    """(a) at full size against `lstmbot run`."""
    from bench.harness import running_bot

    strengths = {arm_label("nietzsche-char", t): s for t, s in BENCH_STRENGTHS.items()}
    env = {"DUEL_MIN_VOTE_S": "0", "RATE_LIMIT_PER_MINUTE": "100000", "MODEL_DIR": str(ROOT / "models")}
    async with SandboxServer() as sb, running_bot(sb, env=env, start_timeout=PATIENCE) as bot:
        db = Database.from_url(bot.database_url)
        try:
            result = await recover(sb, db, strengths, votes=votes, voters=voters)
        finally:
            await db.dispose()
    print(result.report())
    ok = result.tau > 1 - 1e-9 and result.covered == len(strengths)  # tau is a float: 0.999...
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


async def _rate_and_export(
    args: argparse.Namespace, env: dict[str, str], judge: Callable[[str], float], work: Path
) -> None:
    """(b)'s first half: the rater rates samples from the bot; their KTO export."""
    from bench.harness import running_bot

    async with SandboxServer() as sb, running_bot(sb, env=env, start_timeout=PATIENCE) as bot:
        db = Database.from_url(bot.database_url)
        try:
            started = time.monotonic()
            liked, disliked = await rate_samples(
                sb, db, judge, samples=args.samples, temperatures=args.rate_temperatures,
                like_at=args.like_at, length=args.length,
            )  # fmt: skip
            rows = await export_kto(db, work / "kto.jsonl")
        finally:
            await db.dispose()
    print(f"rated {args.samples} samples in {time.monotonic() - started:.0f} s: {liked} 👍, {disliked} 👎")
    print(f"exported {rows} KTO rows to {work / 'kto.jsonl'}")


async def main_loop(args: argparse.Namespace) -> int:
    """(b): rate, export, fine-tune, evaluate, duel."""
    from bench.harness import running_bot
    from train.corpus import load_corpus

    base = ROOT / "models" / "nietzsche-char"
    vocab = vocabulary(load_corpus("nietzsche").text)
    score, like_at = TASTES[args.taste]
    if args.like_at is None:
        args.like_at = like_at
    if args.rate_temperatures is None:  # on-policy: rate what the duels will sample
        args.rate_temperatures = (args.duel_temperature,)

    def judge(text: str) -> float:
        return score(text, vocab)

    work = Path(tempfile.mkdtemp(prefix="lstmbot-prefs-"))
    env = {"DUEL_MIN_VOTE_S": "0", "RATE_LIMIT_PER_MINUTE": "100000", "MODEL_DIR": str(ROOT / "models")}
    if args.kto is not None:  # ratings from an earlier run: straight to fine-tuning
        shutil.copy(args.kto, work / "kto.jsonl")
    else:
        await _rate_and_export(args, env, judge, work)
    models = work / "models"
    models.mkdir()
    shutil.copytree(base, models / "nietzsche-char")
    tuned = models / "nietzsche-tuned"
    seconds = fine_tune(
        base, work / "kto.jsonl", tuned, steps=args.steps, val_stride=50, threads=args.threads, lr=args.lr,
        share=args.share, dislike_weight=args.dislike_weight, min_temperature=args.min_temperature,
        loss=args.loss, beta=args.beta, corpus_weight=args.corpus_weight,
    )  # fmt: skip
    print(f"fine-tuned for {args.steps} steps in {seconds:.0f} s -> {tuned}")
    base_loss, tuned_loss = heldout_loss(base, args.eval_stride), heldout_loss(tuned, args.eval_stride)
    print(
        f"held-out loss (every {args.eval_stride}th char): base {base_loss:.4f}, tuned {tuned_loss:.4f} "
        f"nats/char ({tuned_loss - base_loss:+.4f})"
    )
    env = {
        "DUEL_MIN_VOTE_S": "0", "RATE_LIMIT_PER_MINUTE": "100000", "MODEL_DIR": str(models),
        "DEFAULT_MODEL": "nietzsche-char", "DUEL_TEMPERATURES": str(args.duel_temperature),
    }  # fmt: skip
    async with SandboxServer() as sb, running_bot(sb, env=env, start_timeout=PATIENCE) as bot:
        db = Database.from_url(bot.database_url)
        try:
            wins, losses, ties = await judge_duels(
                sb, db, judge, duels=args.duels, tuned="nietzsche-tuned", length=args.length
            )
        finally:
            await db.dispose()
    share = (wins + ties / 2) / max(1, wins + losses + ties)
    print(
        f"duels at T={args.duel_temperature}: tuned won {wins}, base won {losses}, ties {ties}: {share:.1%}"
    )
    ok = share > 0.6 and tuned_loss - base_loss <= 0.03
    print("PASS" if ok else "FAIL (targets: > 60% of duels, loss up by at most 0.03 nats/char)")
    return 0 if ok else 1


def temperatures_arg(text: str) -> tuple[float, ...]:
    """A comma-separated list of sampling temperatures ("1.0" or "1.0,1.2")."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of temperatures: {text!r}") from None
    if not all(math.isfinite(t) and t > 0 for t in values):
        raise argparse.ArgumentTypeError(f"temperatures must be positive: {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one of the two checks."""
    parser = argparse.ArgumentParser(prog="python -m bench.preferences", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="check", required=True)
    a = sub.add_parser("recover", help="(a) the leaderboard finds known arm strengths")
    a.add_argument("--votes", type=int, default=400)
    a.add_argument("--voters", type=int, default=20)
    b = sub.add_parser("loop", help="(b) ratings -> KTO -> fine-tune -> the tuned model wins duels")
    b.add_argument("--samples", type=int, default=900)
    b.add_argument(
        "--length", type=int, default=default_length("char"),
        help="sample and duel length in characters (default: the bot's own)",
    )  # fmt: skip
    b.add_argument(
        "--rate-temperatures", type=temperatures_arg,
        help="comma-separated temperatures the rater asks for, in equal shares (default: the duels')",
    )  # fmt: skip
    b.add_argument(
        "--taste", choices=sorted(TASTES), default="theme",
        help="the scripted rater: favourite theme words, or corpus words without repeats",
    )  # fmt: skip
    b.add_argument("--like-at", type=float, help="score from which the rater likes (default: the taste's)")
    b.add_argument("--steps", type=int, default=60, help="fine-tuning batches")
    b.add_argument("--lr", type=float, default=6e-4, help="fine-tuning learning rate (small: keep the book)")
    b.add_argument("--share", type=float, default=0.3, help="share of training tokens taken by liked texts")
    b.add_argument("--dislike-weight", type=float, default=0.0, help="push disliked texts down (0: off)")
    b.add_argument("--min-temperature", type=float, help="learn only from samples this hot or hotter")
    b.add_argument("--loss", choices=("sft", "kto"), default="kto", help="fine-tuning objective")
    b.add_argument("--beta", type=float, default=0.1, help="--loss kto: the KTO beta")
    b.add_argument("--corpus-weight", type=float, default=4.0, help="--loss kto: corpus cross-entropy weight")
    b.add_argument("--kto", type=Path, help="skip rating: fine-tune on this KTO file from an earlier run")
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--eval-stride", type=int, default=20)
    b.add_argument("--duels", type=int, default=200)
    b.add_argument("--duel-temperature", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.check == "recover":
        return asyncio.run(main_recover(args.votes, args.voters))
    return asyncio.run(main_loop(args))


if __name__ == "__main__":
    sys.exit(main())
