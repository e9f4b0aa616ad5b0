"""What one training run is asked to do: the corpus, the output folder, the recipe, how to start."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from train.kto import DEFAULT_BETA, DEFAULT_CORPUS_WEIGHT, check_beta
from train.preferences import DEFAULT_DISLIKE_WEIGHT, DEFAULT_SHARE, PreferencesError
from train.recipes import TrainConfig

PREFERENCE_LOSSES = ("sft", "kto")


@dataclass(frozen=True)
class TrainRun:
    """The options of `train.loop.train`, checked when made.

    With `resume`, the saved run's config is used; `epochs` (if given) sets the new total.
    With `init_from` (a bundle), training starts from its weights and vocabulary: fine-tuning.
    With `preferences` (a KTO or DPO export) and `preference_loss="kto"` (the default), the
    model is tuned by the KTO objective (train/kto.py, β = `kto_beta`) against the frozen
    `init_from` bundle, plus `kto_corpus_weight` times the cross-entropy on corpus windows.
    With `preference_loss="sft"`, the preferred texts are mixed into the corpus' training part
    instead (see train/preferences.py); with `dislike_weight` > 0 their disliked texts are
    mixed in too and pushed down (train/losses.py). Either way the held-out part is unchanged,
    and with `preference_min_temperature` only rows sampled at least that hot are used.
    """

    corpus: str | Path
    out: Path
    config: TrainConfig
    resume: bool = False
    epochs: int | None = None
    init_from: Path | None = None
    preferences: Path | None = None
    preference_share: float = DEFAULT_SHARE
    dislike_weight: float = DEFAULT_DISLIKE_WEIGHT
    preference_min_temperature: float | None = None
    preference_loss: str = "kto"
    kto_beta: float = DEFAULT_BETA
    kto_corpus_weight: float = DEFAULT_CORPUS_WEIGHT
    verbose: int | None = None  # Keras' fit verbosity; None: a progress bar on a terminal only
    name: str | None = None  # the bundle's name (None: its folder's, `out.name`)
    # With init_from: train (and then serve) with this context instead of the base's. An LSTM's
    # weights do not depend on the window, so a model can go on learning from longer windows.
    window: int | None = None

    def __post_init__(self) -> None:
        if self.preference_loss not in PREFERENCE_LOSSES:
            raise ValueError(
                f"preference_loss must be one of {PREFERENCE_LOSSES}, got {self.preference_loss!r}"
            )
        if self.kto and (self.resume or self.init_from is None):
            raise PreferencesError("KTO fine-tunes a bundle (--init-from) and cannot --resume")
        if self.kto:
            check_beta(self.kto_beta)
            if not (self.kto_corpus_weight >= 0 and math.isfinite(self.kto_corpus_weight)):
                raise ValueError(f"kto_corpus_weight must be 0 or more, got {self.kto_corpus_weight}")

    @property
    def kto(self) -> bool:
        """Whether this run tunes by the KTO objective."""
        return self.preferences is not None and self.preference_loss == "kto"
