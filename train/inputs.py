"""A run's data: the corpus split into training and held-out parts, with preferences mixed in."""

from __future__ import annotations

from dataclasses import dataclass, replace

from train.corpus import Corpus, load_corpus
from train.data import Split, split_corpus
from train.kto import KtoRows, load_kto_rows
from train.preferences import Kinds, PreferredTexts, load_preferred_texts, mix_with_kinds
from train.run import TrainRun
from train.start import Start


@dataclass(frozen=True)
class Inputs:
    """What a run learns from. `kinds` marks disliked tokens (None: the plain loss will do)."""

    corpus: Corpus
    split: Split
    kinds: Kinds | None = None
    preferred: PreferredTexts | None = None  # SFT on preferences: the texts mixed in
    kto_rows: KtoRows | None = None  # KTO: the rated completions


def load_inputs(run: TrainRun, start: Start) -> Inputs:
    """Read the preferences (if any) and the corpus, and split it (on `start`'s vocabulary if kept)."""
    prefs, min_temperature = run.preferences, run.preference_min_temperature
    kto_rows = load_kto_rows(prefs, min_temperature=min_temperature) if prefs and run.kto else None
    preferred = (
        load_preferred_texts(prefs, min_temperature=min_temperature) if prefs and not run.kto else None
    )
    corpus = load_corpus(run.corpus)
    split = split_corpus(corpus, start.config, start.tokenizer)
    if preferred is None:
        return Inputs(corpus, split, kto_rows=kto_rows)
    disliked = preferred.disliked if run.dislike_weight > 0 else ()
    mixed, kinds = mix_with_kinds(
        split.train,
        preferred.texts,
        disliked,
        split.tokenizer,
        share=run.preference_share,
        seed=start.config.seed,
    )
    # All liked: the plain loss is the same thing.
    return Inputs(corpus, replace(split, train=mixed), kinds if disliked else None, preferred)
