"""The gates a learned challenger must pass against its champion before duels judge it.

`lstmbot learn` measures both bundles the same way and compares:

- held-out loss: cross-entropy on the same held-out split of the same corpus, with the served
  int8 weights (train/evaluate.py, as `lstmbot eval`), every `stride`-th token. The
  challenger may be worse by at most `max_loss_increase` nats per token (0.03: the budget
  bench/preferences.py holds fine-tuning to).
- copy rate: the share of the samples' 8-grams found verbatim in the book (the training part
  of the corpus), found by the novelty badge's index (core/novelty.py), averaged over N
  samples drawn from the same prompts with the same rng seeds at one temperature. The
  share of samples the badge would flag is recorded too, but not gated: at the default
  temperature 0.5 the shipped char model's samples are all flagged (they are stitched from
  the book's phrases: ~87% of their 8-grams are the book's), at 1.0 none are, so it moves
  only in jumps. The challenger may copy at most `copy_margin` more than the champion: with
  256 samples one model's mean has a standard error of about 0.002, so 0.01 is noise-proof
  and still catches a model that learned to recite.
- repetition: the share of distinct n-grams (char 8-grams, word 4-grams) within each sample,
  averaged; a model collapsing into loops ("the the the") repeats its n-grams. The challenger
  must keep at least `min_distinct_ratio` (0.9) of the champion's.

Only numpy and core/: no TensorFlow, so the gates measure what the bot would serve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from core.bundle import Bundle
from core.generator import Generator, Request
from core.limits import DEFAULT_TEMPERATURE, default_length
from core.novelty import NoveltyIndex, copies_the_book
from train.data import Split
from train.evaluate import heldout_metrics

DISTINCT_N = {"char": 8, "word": 4}  # a char 8-gram is about a word and a half; so is a word 4-gram
BATCH = 64  # samples generated together (the C kernel's widest batch)


@dataclass(frozen=True)
class Probe:
    """How both models are measured: the same prompts, rng seeds, temperature and length."""

    samples: int = 256
    temperature: float = DEFAULT_TEMPERATURE  # what users get unless they change it
    length: int | None = None  # tokens; None: the level's default sample length
    seed: int = 0  # sample i is drawn with rng seed `seed + i`
    stride: int = 20  # held-out loss: every Nth token (bench/preferences.py's "every 20th char")


@dataclass(frozen=True)
class Limits:
    """What a challenger must keep to (see the module's docstring)."""

    max_loss_increase: float = 0.03
    copy_margin: float = 0.01
    min_distinct_ratio: float = 0.9


@dataclass(frozen=True)
class Measures:
    """One bundle's numbers."""

    heldout_loss: float  # nats per token
    copy_rate: float  # share of the samples' 8-grams found in the book
    flagged: float  # share of samples the novelty badge would flag
    longest_copied: float  # mean longest run found verbatim in the book, in tokens
    distinct: float  # mean share of distinct n-grams within a sample

    def as_dict(self) -> dict[str, float]:
        """JSON-ready form, rounded to what means something."""
        return {key: round(value, 6) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class Gate:
    """One comparison and its outcome."""

    name: str
    champion: float
    challenger: float
    limit: float  # the challenger's bound (upper for loss and copying, lower for distinct)
    passed: bool
    reason: str  # why it failed ("" when passed)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "champion": round(self.champion, 6),
            "challenger": round(self.challenger, 6),
            "limit": round(self.limit, 6),
            "passed": self.passed,
            **({"reason": self.reason} if self.reason else {}),
        }


def draw(generator: Generator, prompts: Sequence[str], probe: Probe) -> list[list[int]]:
    """The token ids of `probe.samples` samples: prompt i mod len(prompts), rng seed + i."""
    if not prompts:
        raise ValueError("the probe needs at least one prompt")
    level = "word" if generator.bundle.level == "word" else "char"
    length = probe.length or default_length(level)
    requests = [
        Request(prompts[i % len(prompts)], length=length, temperature=probe.temperature, rng=probe.seed + i)
        for i in range(probe.samples)
    ]
    out: list[list[int]] = []
    for begin in range(0, len(requests), BATCH):
        out.extend(sample.token_ids for sample in generator.generate(requests[begin : begin + BATCH]))
    return out


def distinct_share(ids: Sequence[int], n: int) -> float:
    """Distinct n-grams over all n-grams of one sample (1.0 when it has none)."""
    count = len(ids) - n + 1
    if count <= 0:
        return 1.0
    return len({tuple(ids[i : i + n]) for i in range(count)}) / count


def measure(
    bundle: Bundle, split: Split, index: NoveltyIndex, prompts: Sequence[str], probe: Probe
) -> Measures:
    """Held-out loss, copying and repetition of one bundle, as served (int8 weights)."""
    generator = Generator(bundle)
    level = "word" if bundle.level == "word" else "char"
    loss = heldout_metrics(generator, split.heldout, heldout_chars=split.heldout_chars, stride=probe.stride)
    samples = draw(generator, prompts, probe)
    found = [index.check(ids) for ids in samples]
    return Measures(
        heldout_loss=loss.nats_per_token,
        copy_rate=float(np.mean([1.0 - novelty.new_ngram_share for novelty in found])),
        flagged=float(np.mean([copies_the_book(novelty, level) for novelty in found])),
        longest_copied=float(np.mean([novelty.longest_copied for novelty in found])),
        distinct=float(np.mean([distinct_share(ids, DISTINCT_N[level]) for ids in samples])),
    )


def judge(champion: Measures, challenger: Measures, limits: Limits, *, unit: str = "token") -> list[Gate]:
    """The three gates, in order: held-out loss, copy rate, repetition."""
    increase = challenger.heldout_loss - champion.heldout_loss
    loss = _gate(
        "heldout_loss",
        champion.heldout_loss,
        challenger.heldout_loss,
        champion.heldout_loss + limits.max_loss_increase,
        upper=True,
        why=f"held-out loss {increase:+.4f} nats/{unit} over the champion's "
        f"(at most {limits.max_loss_increase:+.4f})",
    )
    copying = _gate(
        "copy_rate",
        champion.copy_rate,
        challenger.copy_rate,
        champion.copy_rate + limits.copy_margin,
        upper=True,
        why=f"copies the book more: {challenger.copy_rate:.1%} of its 8-grams are the book's, "
        f"the champion's {champion.copy_rate:.1%} (at most {limits.copy_margin:.1%} more)",
    )
    repetition = _gate(
        "repetition",
        champion.distinct,
        challenger.distinct,
        champion.distinct * limits.min_distinct_ratio,
        upper=False,
        why=f"repeats itself: {challenger.distinct:.1%} distinct n-grams in a sample, the "
        f"champion's {champion.distinct:.1%} (at least {limits.min_distinct_ratio:.0%} of that)",
    )
    return [loss, copying, repetition]


def _gate(name: str, champion: float, challenger: float, limit: float, *, upper: bool, why: str) -> Gate:
    passed = challenger <= limit if upper else challenger >= limit
    return Gate(name, champion, challenger, limit, passed, "" if passed else why)
