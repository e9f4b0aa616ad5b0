"""Fine-tuning from ratings: the preferred texts of a KTO or DPO export, mixed into the corpus.

A character or word LSTM has no reward model to optimise, so "learning from preferences" here
is supervised fine-tuning on what people preferred: the liked completions of a KTO export
(`label` true) and the chosen side of each DPO pair, each with its prompt, since the model
learns to continue prompts. To keep the model from forgetting its book (and its held-out loss
from drifting), the preferred texts are not trained on alone: they are repeated into the
training part of the corpus until they make up `share` of the training tokens (default 30%).
The held-out part of the corpus stays untouched and measures what the tuning cost.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from core.tokenizers import Tokenizer

Ids = npt.NDArray[np.int32]
DEFAULT_SHARE = 0.3


class PreferencesError(ValueError):
    """A preferences file that cannot be trained on; the message names the line."""


@dataclass(frozen=True)
class PreferredTexts:
    """The texts a preferences file says were better, with where they came from."""

    texts: list[str]
    rows: int  # rows read (liked, disliked and pairs)
    sha256: str
    source: str


def _preferred(row: object, line: int, path: Path) -> str | None:
    """The text a row prefers: prompt + completion (liked) or prompt + chosen; None if disliked."""
    if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
        raise PreferencesError(f"{path}:{line}: expected a JSON object with a text 'prompt'")
    prompt: str = row["prompt"]
    if "chosen" in row:  # DPO: {"prompt", "chosen", "rejected"}
        if not isinstance(row["chosen"], str):
            raise PreferencesError(f"{path}:{line}: 'chosen' must be text")
        return prompt + row["chosen"]
    if "completion" in row and "label" in row:  # KTO: {"prompt", "completion", "label"}
        if not isinstance(row["completion"], str) or not isinstance(row["label"], bool):
            raise PreferencesError(f"{path}:{line}: 'completion' must be text and 'label' true or false")
        return prompt + row["completion"] if row["label"] else None
    raise PreferencesError(f"{path}:{line}: neither a KTO row (completion, label) nor a DPO row (chosen)")


def load_preferred_texts(path: Path) -> PreferredTexts:
    """Read a KTO or DPO JSON Lines export (as `lstmbot export --format kto|dpo` writes)."""
    path = Path(path)
    if not path.is_file():
        raise PreferencesError(f"{path}: no such file")
    raw = path.read_bytes()
    texts: list[str] = []
    rows = 0
    for line_no, line in enumerate(raw.decode("utf-8", errors="strict").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PreferencesError(f"{path}:{line_no}: not JSON ({exc.msg})") from None
        rows += 1
        text = _preferred(row, line_no, path)
        if text and text.strip():
            texts.append(text)
    if not texts:
        raise PreferencesError(f"{path}: no liked completion or chosen text to learn from")
    return PreferredTexts(texts, rows, hashlib.sha256(raw).hexdigest(), str(path))


def mix_into_training(
    train_ids: Ids, texts: list[str], tokenizer: Tokenizer, *, share: float = DEFAULT_SHARE, seed: int = 0
) -> Ids:
    """The corpus' training ids with the preferred texts repeated in until they are `share` of it.

    Each text is one piece, separated by a blank line, and the pieces are shuffled into the
    corpus at random piece boundaries so a training window sees book and preference both.
    """
    if not 0 < share < 1:
        raise PreferencesError(f"the preference share must be between 0 and 1, got {share}")
    separator = tokenizer.encode("\n\n")
    pieces = [np.asarray(separator + tokenizer.encode(text), dtype=np.int32) for text in texts]
    preferred_tokens = sum(len(p) for p in pieces)
    # Repeat the whole set until it reaches share / (1 - share) of the corpus' tokens.
    wanted = share / (1 - share) * len(train_ids)
    repeats = max(1, round(wanted / max(1, preferred_tokens)))
    rng = np.random.default_rng(seed)
    inserted = [p for _ in range(repeats) for p in pieces]
    # Cut the corpus at random points into as many chunks as there are pieces to place.
    cuts = np.sort(rng.choice(len(train_ids), size=len(inserted), replace=True))
    chunks = np.split(train_ids, cuts)
    order = rng.permutation(len(inserted))
    mixed: list[Ids] = [chunks[0]]
    for slot, piece in enumerate(order):
        mixed.extend((inserted[piece], chunks[slot + 1]))
    return np.concatenate(mixed).astype(np.int32)
