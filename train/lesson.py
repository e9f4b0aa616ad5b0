"""The lesson a round can read off its ratings directly: how sharply should the champion choose?

Some tastes are mostly about sharpness. The vocabulary rater of bench/preferences.py likes text
of real words without repeats: a champion sampled a little colder inside words (fewer invented
words) and a little warmer between them (fewer loops) is what it likes, and the KTO step, which
must find that direction from a few hundred labels through the whole network, did not in three
rounds (docs/learning-runs.md). Here the direction is searched for directly, in a family of two
numbers: the factor on the champion's logits after a letter (`inside` a word) and after anything
else (`elsewhere`); a word-level model has only the second.

How much a model with those factors would be liked is estimated from the ratings the champion's
own samples got, without generating anything: each rated sample x, drawn at temperature T, is
weighted by how much likelier the changed model makes it, w(x) = p'(x) / p(x), and the like rate
is the weighted share of likes (self-normalised importance sampling; Owen, *Monte Carlo theory,
methods and examples*, 2013, ch. 9). The weights degenerate as the factors move away from 1, so
the search keeps to factors whose weights still count as `MIN_EFFECTIVE` samples
((sum w)^2 / sum w^2), and the estimate must beat the champion's own like rate in at least
`CONFIDENCE` of bootstrap resamples of the ratings. The same weights, on the copy gate's own
samples of the champion, estimate what the changed champion would copy from the book; the
search keeps to factors estimated within half the gate's margin (a first run without this bound
chose 1.075 everywhere, and its challenger copied 1.9 points more than the champion: rejected).

A lesson is worth a round only where it promises a lot (`MIN_GAIN`: half as many likes again):
the blind duels that decide promotion need a clear margin to decide within their vote budget,
and a small change of sharpness wins too few duels (bench/lessons.py measures it). Otherwise the
round fine-tunes with KTO as before. A worthwhile lesson is taught to the champion's weights by
distillation (train/distill.py): the challenger is an ordinary bundle.

numpy and core/ only: the fit runs the served int8 generator, not TensorFlow.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from core.generator import Generator
from core.tokenizers import Tokenizer

F64 = npt.NDArray[np.float64]

FACTORS = tuple(round(0.8 + 0.025 * i, 3) for i in range(21))  # 0.8 .. 1.3
MIN_EFFECTIVE = 100.0  # effective samples the weights must keep (the estimate's standard error ~0.05)
CONFIDENCE = 0.95  # bootstrap share in which the lesson beats the champion
MIN_GAIN = 1.5  # estimated like rate over the champion's, for the lesson to be worth a round
BOOTSTRAP = 400
BATCH = 64


@dataclass(frozen=True)
class Rated:
    """One rated sample of the champion: its prompt, its text, the verdict, its temperature."""

    prompt: str
    completion: str
    liked: bool
    temperature: float


@dataclass(frozen=True)
class Lesson:
    """The factors found, and the evidence for them."""

    inside: float  # on the logits after a letter (inside a word)
    elsewhere: float  # after anything else
    rated: int  # ratings used
    like_rate: float  # the champion's: the share of its rated samples liked
    estimated: float  # the estimated like rate with the factors
    effective: float  # effective samples behind the estimate
    confidence: float  # bootstrap share in which the estimate beats `like_rate`
    copy_rate: float | None = None  # the copy gate's measure, estimated with the factors

    @property
    def gain(self) -> float:
        """Estimated like rate over the champion's (1.0: no gain)."""
        return self.estimated / self.like_rate if self.like_rate > 0 else 1.0

    @property
    def worth_a_round(self) -> bool:
        """A change, confidently better, by at least MIN_GAIN."""
        changed = (self.inside, self.elsewhere) != (1.0, 1.0)
        return changed and self.confidence >= CONFIDENCE and self.gain >= MIN_GAIN

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-ready form (bundle meta, learn.json)."""
        return {key: round(v, 4) if isinstance(v, float) else v for key, v in asdict(self).items()}

    def describe(self) -> str:
        """One line for the learner's output."""
        return (
            f"x{self.inside:g} inside words, x{self.elsewhere:g} elsewhere: estimated like rate "
            f"{self.estimated:.1%} against the champion's {self.like_rate:.1%} (x{self.gain:.2f}; "
            f"{self.effective:.0f} effective of {self.rated} ratings, better in {self.confidence:.0%} "
            "of resamples)"
            + ("" if self.copy_rate is None else f", estimated copy rate {self.copy_rate:.2%}")
        )


def inside_word(tokenizer: Tokenizer) -> npt.NDArray[np.bool_]:
    """Per token id: whether the next token continues a word (char level: the token is a letter)."""
    if tokenizer.kind != "char":
        return np.zeros(tokenizer.vocab_size, dtype=bool)
    return np.array([len(t) == 1 and t.isalpha() for t in tokenizer.tokens], dtype=bool)


def read_rated(path: Path, champion_version: str) -> list[Rated]:
    """The ratings of the champion's own samples in a preferences export (KTO rows made by this
    version at a temperature above 0): only those were drawn from the model the weights judge."""
    rated = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        row = json.loads(line) if line.strip() else None
        if not isinstance(row, dict) or "completion" not in row or "label" not in row:
            continue  # a DPO row (duel votes, inline picks): two texts, no verdict of one alone
        temperature = row.get("temperature")
        if str(row.get("model_version")) != champion_version or not isinstance(temperature, (int, float)):
            continue
        if temperature > 0 and isinstance(row["completion"], str) and row["completion"]:
            rated.append(Rated(str(row["prompt"]), row["completion"], bool(row["label"]), float(temperature)))
    return rated


def log_probs(generator: Generator, rated: Sequence[Rated], grid: Sequence[tuple[float, float]]) -> F64:
    """log p(x) of each rated sample under each factor pair of `grid`, (samples, pairs)."""
    window = generator.window
    contexts = [(generator.tokenizer.encode_counted(r.prompt).ids or [0])[-window:] for r in rated]
    texts = [generator.tokenizer.encode(r.completion) for r in rated]
    return _log_probs(generator, contexts, texts, [r.temperature for r in rated], grid)


def _log_probs(
    generator: Generator,
    contexts: Sequence[Sequence[int]],
    texts: Sequence[Sequence[int]],
    temperatures: Sequence[float],
    grid: Sequence[tuple[float, float]],
) -> F64:
    inside = inside_word(generator.tokenizer)
    out = np.zeros((len(texts), len(grid)))
    factors = np.array(grid, dtype=np.float64)  # (pairs, 2)
    for begin in range(0, len(texts), BATCH):
        part = range(begin, min(begin + BATCH, len(texts)))
        length = max(1, *(len(texts[i]) for i in part))
        ids = np.zeros((len(part), length), dtype=np.int64)
        live = np.zeros((len(part), length), dtype=bool)
        for row, i in enumerate(part):
            ids[row, : len(texts[i])], live[row, : len(texts[i])] = texts[i], True
        temperature = np.array([temperatures[i] for i in part])[:, None]
        previous = np.array([contexts[i][-1] for i in part])
        for t, logits in enumerate(generator.forced_logits([contexts[i] for i in part], ids)):
            z = logits.astype(np.float64) / temperature
            picked = z[np.arange(len(part)), ids[:, t]]
            # (rows, pairs): each row's factor under each pair, by the token before
            scale = np.where(inside[previous][:, None], factors[None, :, 0], factors[None, :, 1])
            scaled = scale[:, :, None] * z[:, None, :]
            top = scaled.max(axis=2)
            norm = top + np.log(np.exp(scaled - top[:, :, None]).sum(axis=2))
            out[begin : begin + len(part)] += np.where(live[:, t, None], scale * picked[:, None] - norm, 0.0)
            previous = ids[:, t]
    return out


@dataclass(frozen=True)
class CopyProbe:
    """The copy gate's own samples of the champion (train/gates.py: its prompts, rng seeds and
    temperature), each one's share of 8-grams found in the book, and the most a lesson may
    copy on average: the same importance weights estimate what a changed champion would copy."""

    contexts: list[list[int]]
    texts: list[list[int]]
    temperature: float
    copied: F64
    limit: float

    def estimate(self, generator: Generator, grid: Sequence[tuple[float, float]]) -> tuple[F64, F64]:
        """Per factor pair: the estimated copy share and the effective samples behind it."""
        logp = _log_probs(generator, self.contexts, self.texts, [self.temperature] * len(self.texts), grid)
        log_w = logp - logp[:, [grid.index((1.0, 1.0))]]
        weights = np.exp(log_w - log_w.max(axis=0))
        effective = weights.sum(axis=0) ** 2 / (weights**2).sum(axis=0)
        return (weights * self.copied[:, None]).sum(axis=0) / weights.sum(axis=0), effective


def fit(
    generator: Generator, rated: Sequence[Rated], *, copying: CopyProbe | None = None, seed: int = 0
) -> Lesson:
    """The factor pair with the best estimated like rate among those the ratings can judge (and,
    with `copying`, whose estimated copy share stays within its limit)."""
    liked = np.array([r.liked for r in rated], dtype=np.float64)
    if len(rated) == 0 or liked.min() == liked.max():
        rate = float(liked.mean()) if len(rated) else 0.0
        return Lesson(1.0, 1.0, len(rated), rate, rate, float(len(rated)), 0.0)
    level_char = generator.tokenizer.kind == "char"
    grid = list(itertools.product(FACTORS if level_char else (1.0,), FACTORS))
    plain = grid.index((1.0, 1.0))
    logp = log_probs(generator, rated, grid)
    log_w = logp - logp[:, [plain]]
    weights = np.exp(log_w - log_w.max(axis=0))
    effective = weights.sum(axis=0) ** 2 / (weights**2).sum(axis=0)
    estimate = (weights * liked[:, None]).sum(axis=0) / weights.sum(axis=0)
    allowed = effective >= min(MIN_EFFECTIVE, 0.5 * len(rated))
    copy_share = np.full(len(grid), np.nan)
    if copying is not None:
        copy_share, copy_effective = copying.estimate(generator, grid)
        allowed &= (copy_share <= copying.limit) & (
            copy_effective >= min(MIN_EFFECTIVE, 0.5 * len(copying.texts))
        )
        allowed[plain] = True
    best = int(np.argmax(np.where(allowed, estimate, -np.inf)))
    rng = np.random.default_rng(seed)
    wins = 0
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, len(rated), len(rated))
        w, y = weights[pick][:, [best, plain]], liked[pick]
        again = (w * y[:, None]).sum(axis=0) / w.sum(axis=0)
        wins += int(again[0] > again[1])
    inside, elsewhere = grid[best]
    return Lesson(
        inside,
        elsewhere,
        len(rated),
        float(liked.mean()),
        float(estimate[best]),
        float(effective[best]),
        wins / BOOTSTRAP if best != plain else 0.0,
        None if copying is None else float(copy_share[best]),
    )
