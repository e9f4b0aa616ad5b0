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
duels (records below), so what the loop gains, /temp cannot give. The second rater,
`--taste vocabulary`, likes words found in the corpus and no repeated three-word phrases;
that taste is mostly won by a colder model.

The default recipe, and why (records below):
- Samples and duels are 400 characters, the bot's own default length. At 120 characters
  (the earlier setting) the base model used a favourite word in 30% of samples, so over half
  the duels were 0-0 ties; at 400 it uses 1.2 per sample and a quarter of duels tie.
- The rater rates 900 samples at the duels' temperature, T=1.0. Tuning a model up on its own
  liked samples and down on its own disliked ones is a policy gradient: the gradient of
  log p averages to zero over the model's own samples, so only what the rater's judgement
  picks out moves the model. Samples at other temperatures add "be colder" or "be hotter",
  which costs held-out loss and wins nothing for this taste.
- KTO, 60 steps at lr 6e-4 (batch 16 rows plus the corpus term of weight 4): each rated
  sample is seen about once. 600 samples and 40 steps, the previous default, passed 4 runs
  of 6; 900 and 60 passed all 8 runs made (records below).

The same functions run at small sizes in tests/e2e/test_preference_bench.py.

The default recipe (2026-11-26, 2-core AMD EPYC Zen 4, AVX-512 VNNI; one run at a time):
`python -m bench.preferences loop` (= `--samples 900 --steps 60`), each run with fresh
ratings; held-out change in nats/char (base 1.2837, every 20th char); duels at T=1.0 as
tuned-base-ties and the tuned share. A run takes about 12 minutes (rating 85 s, fine-tune
8 min, duels 3 min).
  n1 (306 👍 of 900) ..................................................... +0.0043  100-46-54  63.5% PASS
  n2 (296 👍) ............................................................ +0.0166  106-30-64  69.0% PASS
  n3 (297 👍) ............................................................ +0.0081  90-48-62   60.5% PASS
  n4 (287 👍) ............................................................ +0.0099  91-46-63   61.3% PASS
  n5 (304 👍) ............................................................ +0.0146  99-36-65   65.8% PASS
  n6 (306 👍) ............................................................ +0.0108  94-39-67   63.7% PASS
  n7 (284 👍; run as plain `loop`, after the default changed) ........... +0.0149  98-29-73   67.2% PASS
  (s2 below, the same command on the Intel machine: 307 👍, +0.0142, 104-38-58, 66.5% PASS)
  q1 --samples 1200 --steps 80 (379 👍 of 1200; fine-tune 10 min) ....... +0.0118  84-41-75   60.8% PASS
  l1 --lr 1e-3 (294 👍) ................................................. +0.0204  101-33-66  67.0% PASS
  l2 --lr 1e-3 (289 👍) ................................................. +0.0255  87-45-68   60.5% PASS
(The default: 8 of 8 pass, s2 included, 60.5-69.0%, mean 64.7%, for +0.004 to +0.017
nats/char. The margin is thin: a tie counts half, so one run's share has a standard deviation
of about 2.9 points from its 200 duels alone, and the runs spread by 3.0; with a true share
near 65%, about one run in ten may still land under 60%. More ratings (q1) or a higher
learning rate (l1, l2, which spends most of the loss budget) did not win more in these runs.)

The previous default and the other rater (2026-11-26, 2-core Intel Xeon, model 207, AVX-512
VNNI; one run at a time): `python -m bench.preferences loop --samples 600 --steps 40`, each
run with fresh ratings;
held-out change in nats/char (base 1.2837, every 20th char); duels at T=1.0 as
tuned-base-ties and the tuned share (200 duels: one run's share is about ±3.5% from the duels
alone). A run takes about 11 minutes (rating 100 s, fine-tune 5 min, duels 3 min).
  f1 (206 👍 of 600) ..................................................... +0.0156  93-42-65   62.7% PASS
  f2 (195 👍) ............................................................ +0.0145  101-32-67  67.2% PASS
  f3 (186 👍) ............................................................ +0.0183  101-44-55  64.2% PASS
  f4 (189 👍) ............................................................ +0.0159  99-43-58   64.0% PASS
  f5 (170 👍) ............................................................ +0.0119  86-47-67   59.8%
  f6 (198 👍) ............................................................ +0.0056  77-50-73   56.8%
  s1 --steps 60 (187 👍) ................................................ +0.0121  82-46-72   59.0%
  s2 --samples 900 --steps 60 (307 👍 of 900) .......................... +0.0142  104-38-58  66.5% PASS
  v1 --taste vocabulary (81 👍 of 600) .................................. +0.0172  112-84-4   57.0%
(The theme rater: 4 of 6 pass, mean 62.5%, every run well inside the loss budget: better
than the earlier recipes (2 of 8, mean 58.3%) but not yet reliable. The fine-tune moves the
model by different amounts from run to run (f6 cost only +0.0056), and one run's duels alone
vary by ±3.5%, so a reliable pass needs a true share near 67%. The tuned model wins by the
words it chooses: offline, a tuned bundle used 2.12 favourite words per sample against the
base's 1.20. The vocabulary rater's target is not met by this recipe: its likes at T=1.0
differ from its dislikes mostly by sampling luck; only a colder model wins it.)
How it was found (same machine; "offline" = 300 paired T=1.0 samples of 400 characters from
core.Generator on corpus seeds, judged by the same taste, ±3%):
  sharpening, offline (base at T against base at 1.0): theme 51.0%, 50.2%, 52.7% at T=0.95,
     0.9, 0.8; vocabulary 61.0%, 74.0%, 91.8% (at 120 characters: 60.3%, 63.5%, 77.8%)
  --length 400 --taste vocabulary (the old defaults otherwise) .......... +0.0339  122-74-4   62.0%
  --length 400 --taste theme --like-at 2 --rate-temperatures 0.5,1.0,1.2 (87 of 300 👍)
                                                                          +0.0098  86-52-62   58.5%
  offline on that run's ratings: --lr 6e-4 +0.0185 63.2%; --lr 1e-3 +0.0268 61.0%;
     --steps 80 +0.0150 60.5%; --loss sft --lr 1e-3 +0.0101 44.5%
  offline, 600 fresh ratings at T=1.0 (183 👍), --lr 6e-4 ............. +0.0097  178-64-58  69.0%
     (favourite words per sample: 1.20 base, 2.12 tuned)
Runs below this line used the earlier defaults (--taste vocabulary --samples 300 --length 120
--rate-temperatures 0.2,0.5,1.0,1.2 --lr 3e-4, and theme's like-at 1); their options are
relative to those.

Measured on the 2-core development machine (2-core AMD EPYC, shared with other jobs):
recover --votes 400 --voters 20 (2026-11-25): 400 counted votes in 240 s, Kendall tau 1.000,
5/5 intervals cover the true strengths.

KTO (--loss kto, train/kto.py; 2026-11-26, a fresh rating file reused by every run below
with `--kto FILE`): rated 300 samples in 31 s, 125 👍 and 175 👎 (liked 21/75 at T=0.2,
72/75 at 0.5, 28/75 at 1.0, 4/75 at 1.2). Base held-out 1.2837 nats/char (every 20th char).
Each line: `python -m bench.preferences loop --kto FILE` plus the options shown; held-out
change in nats/char; duels at T=1.0 as tuned-base-ties and the tuned share (200 duels; one
run's share is ±3.5% from the duels alone, and the TensorFlow fine-tune is not bit-exact
from run to run: r5, r8 and r12 are the same command).
  r6 --loss sft --steps 40 (the old default) .......................... +0.0061  90-90-20   50.0%
  r1 --loss kto --steps 40 --corpus-weight 1 ............................ +0.0462  108-75-17  58.2%
  r2 --loss kto --steps 40 --corpus-weight 1 --min-temperature 0.5 ...... +0.0564  137-49-14  72.0%
  r3 --loss kto --steps 20 --corpus-weight 1 --min-temperature 0.5 ...... +0.0462  120-61-19  64.8%
  r4 --loss kto --steps 40 --corpus-weight 1 --lr 1e-4 --min-temperature 0.5
                                                                          +0.0257  115-78-7   59.2%
  r5 --loss kto --steps 40 --corpus-weight 4 --min-temperature 0.5 ...... +0.0253  123-65-12  64.5% PASS
  r8 (r5 again) ......................................................... +0.0266  105-77-18  57.0%
  r7 --loss kto --steps 40 --corpus-weight 4 (now the defaults) ......... +0.0214  117-72-11  61.3% PASS
  r9 (r7 again: `--steps 40`, the defaults) ............................ +0.0206  106-82-12  56.0%
  r10 --loss kto --steps 40 --beta 0.3 --min-temperature 0.5 ............ +0.0214  105-82-13  55.8%
  r11 --loss kto --steps 60 --corpus-weight 8 --min-temperature 0.5 ..... +0.0184  105-80-15  56.2%
  r12 (r5 a third time: `--steps 40 --min-temperature 0.5`) ............. +0.0251  107-81-12  56.5%
(r1-r6 ran when the defaults were --loss sft and --corpus-weight 1; the lines give the
options that repeat them now.) KTO beats the SFT mix clearly on the same ratings (56-72%
against 50%), and two runs of eight within the budget met both targets, but not reliably:
the same command gave 64.5%, 57.0% and 56.5%. Within the 0.03 budget KTO lands at 56-65%
(mean 58.3% over those eight runs), at best about the frontier of the plain 0.9 sharpening
below (63.8% at +0.024). The KL estimate z0 stayed clamped at 0 in every run (the mismatched
pairs lose likelihood), so the reference point did no work here; after 40 steps the rewards
were about +6 to +13 nats per liked completion and -11 to -33 per disliked one. Without the
corpus term's weight of 4, KTO overshoots the budget (r1-r3).

On-policy ratings (`--rate-temperatures 1.0`: every sample at the duel temperature, so that
likes and dislikes differ only in what the taste measures, not in temperature; 2026-11-26,
2-core AMD EPYC Zen 4, under nice -n 19 on a shared machine, often paused by other jobs):
  a1 --rate-temperatures 1.0 (300 rated in 27 s: 103 👍, 197 👎) ...... +0.0120  100-88-12  53.0%
  a2 --rate-temperatures 1.0 --samples 600 (47 s: 239 👍, 361 👎) ..... +0.0083  89-91-20   49.5%
  a3 --kto a2's file --steps 80 ........................................ +0.0155  100-88-12  53.0%
(a1's and a2's duels were run on their tuned bundles after the runs died of 120 s and 60 s
waits while paused; every wait is now PATIENCE.) At 40 steps the on-policy ratings cost
about half the held-out loss of the mixed ones (+0.008-0.012 against +0.021) but won fewer
duels (53.0%, 49.5% against a mean of 58.3%): the T=1.0 likes differ from the dislikes
mostly by sampling luck, a weaker signal than "be colder". So the default stays
0.2,0.5,1.0,1.2; twice the steps on on-policy ratings (a3) did no better.

Theme taste (`--taste theme`; 2026-11-26, same machine, under nice -n 19, alongside other
runs). Offline, 300 pairs of T=1.0 samples on the same stored seeds: the base model against
itself at T=1.0, 0.9 and 0.8 (= its logits divided by 0.9 and 0.8) wins 51.3%, 52.0% and
51.2% of this taste's comparisons (the vocabulary taste: 51.2%, 67.2%, 78.0%), so what the
loop gains here, sharpening cannot give. (A first version broke equal counts by half the
vocabulary taste: sharpening by 0.9 then won 60.3%, because half the duels have no favourite
word on either side; so equal counts now tie.) Runs (held-out change; tuned-base-ties):
  t1 --taste theme (300 rated: 75 👍, 225 👎) ............................ +0.0001  46-38-116  52.0%
  t3 --taste theme --kto t1's file --lr 1e-3 ............................. +0.0174  56-36-108  55.0%
  t2 --taste theme --samples 900 --rate-temperatures 0.5,1.0,1.2 --lr 1e-3
     (900 rated: 263 👍, 637 👎) ........................................... +0.0239  63-44-93   54.8%
  t4 --taste theme --kto t2's file --loss sft --lr 1e-3 --share 0.5 ...... +0.0262  68-40-92   57.0%
  t5 --taste theme --kto t1's file --lr 1e-3 --steps 60 .................. +0.0246  70-29-101  60.2% PASS
  t6 --taste theme --lr 1e-3 --steps 60 (fresh: 300 rated, 69 👍) ........ +0.0230  51-41-108  52.5%
  t7 --taste theme --lr 1e-3 --steps 60 (fresh ratings) .................. +0.0278  53-50-97   50.7%
(t5 passed once, at the edge of both targets, and its setting failed both repeats on fresh
ratings, t6 and t7; so the default taste stays `vocabulary`.)
The theme is learnt: t1's bundle uses a favourite word in 41% of 300 T=1.0 samples against
27% for the base (mean count 0.50 against 0.31; 99-48-153, 58.5% in that offline check).
But over half the duels are 0-0 ties, which count half, so > 60% needs the tuned bundle to
win 20 more duels in 100 than it loses; KTO's sequence-level reward (one favourite word in a
120-character text) moves that slowly, and most of its reward goes to the rated texts
themselves (+14 to +29 nats per liked one after 40 steps).

SFT (the mix of liked texts into the corpus; `--loss sft` now), on an earlier rating file:
loop at full size (2026-11-26): rated 300 samples in 96 s: 126 👍, 174 👎. The rater's taste
is mostly the temperature: liked 26/75 at T=0.2 (stock phrases repeat), 72/75 at 0.5, 23/75
at 1.0, 5/75 at 1.2. `loop` with the defaults (--steps 40 --lr 3e-4, share 0.3): held-out
1.2843 -> 1.2917 nats/char (+0.0074); duels at T=1.0: tuned won 106, base 85, ties 9:
55.2%. FAIL: the > 60% target is not met. `--kto FILE --steps 80` (same ratings): +0.0077
nats/char, tuned won 104, base 87, ties 9: 54.2%; `--steps 200`: +0.0142, 107-83-10: 56.0%.
FAIL both. Other settings, on the same ratings (`--kto`),
scored by a quicker paired check (300 pairs of T=1.0 samples from core.Generator judged by
the same taste; same held-out stride 20; its win shares are ±3%; the default run's bundle
scored 44.5% there):
  --steps 40 --dislike-weight 0.5 ........................ -0.0000 nats, 45.5%
  --steps 60 --share 0.2 --min-temperature 1.0 ........... +0.0061 nats, 49.0%
  --steps 80 --lr 5e-4 --share 0.2 --dislike-weight 3
         --min-temperature 1.0 ........................... +0.0199 nats, 45.0%
  --steps 100 --lr 1e-3 --share 0.5 ...................... +0.0535 nats, 51.2%
  --steps 120 --share 0.5 ................................ +0.0272 nats, 53.2%
What wins a T=1.0 duel is being colder: the base model's own logits divided by 0.95, 0.9 or
0.85 cost +0.010, +0.024 and +0.043 nats/char and win 56.5%, 63.8% and 69.8% of those
pairs. Fine-tuning on the liked texts moves the model that way (words found in the
vocabulary at T=1.0, 150 samples: 91.1% base, 92.4% after the default run) but, in these
runs, no more cheaply than that division, so within the 0.03 budget it did not get near a
clear > 60%. Pushing the disliked texts down undid even that (90.5% with
--dislike-weight 0.5): 49 of the 174 are cold, repetitive samples, whose likeliest
characters are then pushed down; pushing down only the hot ones (--min-temperature 1.0)
did not help either (90.6%). Rejection sampling at T >= 1.0 leaves 28 liked texts, too few
to move the model. Without the repetitive T=0.2 samples, in the bench itself (`loop --kto
FILE --steps 60 --min-temperature 0.5`): +0.0061 nats/char, tuned won 97, base 87, ties 16:
52.5%. FAIL. (Earlier, reduced to 60 samples of 80 characters: --steps 12 --lr 5e-4 won
56.7% of 60 duels at +0.0008; --steps 30, 43.5% of 100 at +0.0050; the preset's rate, 5e-3,
cost 0.15 nats/char in 10 steps.)
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
from bot.db.models import Duel, StoredSample
from bot.db.preference_export import write_preferences
from bot.ranking import ArmStrength, Outcome, leaderboard
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
    """The leaderboard's name for an arm (as bot.db.duels.Arm.label)."""
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
            stmt = select(StoredSample.text).where(StoredSample.telegram_message_id == message_id)
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
