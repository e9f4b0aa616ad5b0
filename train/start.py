"""Where a run starts: fresh, from its own checkpoint (--resume) or from a bundle (--init-from)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.bundle import load_bundle
from core.tokenizers import Tokenizer
from train.recipes import TrainConfig
from train.run import TrainRun

CHECKPOINTS = "checkpoints"


@dataclass(frozen=True)
class Start:
    """The config a run really uses, and what it carries over from before."""

    config: TrainConfig
    state: dict[str, Any] = field(default_factory=dict)  # a resumed run's checkpoint state
    tokenizer: Tokenizer | None = None  # resumed or fine-tuned: the vocabulary is kept
    weights: dict[str, np.ndarray] | None = None  # fine-tuned: the base's weights
    base_id: str | None = None  # "name@version" of the bundle fine-tuned from

    @property
    def epoch(self) -> int:
        """Epochs done before this run (0 unless resumed)."""
        return int(self.state.get("epoch", 0))

    @property
    def seconds(self) -> float:
        """Seconds spent before this run (0 unless resumed)."""
        return float(self.state.get("seconds", 0.0))


def checkpoint_dir(run: TrainRun) -> Path:
    """The folder of a run's checkpoint and vocabulary."""
    return Path(run.out) / CHECKPOINTS


def resolve_start(run: TrainRun) -> Start:
    """The run's start: its checkpoint's config, or the base bundle's shape, with the run's epochs."""
    config = run.config
    if run.kto:
        # KTO scores whole completions: every LSTM must return sequences (the fast recipe).
        config = config.with_overrides(recipe="fast")
    if run.resume:
        ckpt_dir = checkpoint_dir(run)
        state_path = ckpt_dir / "state.json"
        if not state_path.is_file():
            raise FileNotFoundError(f"{state_path}: nothing to resume from (train without --resume first)")
        state = json.loads(state_path.read_text())
        config = TrainConfig(**state["config"]).with_overrides(epochs=run.epochs)
        return Start(config, state, Tokenizer.load(ckpt_dir / "vocab.json"))
    config = config.with_overrides(epochs=run.epochs)
    if run.init_from is None:
        return Start(config)
    base = load_bundle(run.init_from)
    config = config.with_overrides(
        level=base.level,
        window=run.window or base.model.window,
        input=base.model.input,
        embedding_dim=base.model.embedding_dim,
        hidden=base.model.lstm_units[0],
        layers=len(base.model.lstm_units),
        lowercase=getattr(base.tokenizer, "lowercase", config.lowercase),
    )
    return Start(
        config, tokenizer=base.tokenizer, weights=dict(base.weights), base_id=f"{base.name}@{base.version}"
    )
