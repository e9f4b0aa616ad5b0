"""Fine-tuning from ratings: the texts of a KTO or DPO export, mixed into the corpus.

A character or word LSTM has no reward model to optimise, so "learning from preferences" here
is supervised fine-tuning on what people preferred: the liked completions of a KTO export
(`label` true) and the chosen side of each DPO pair, each with its prompt, since the model
learns to continue prompts. To keep the model from forgetting its book (and its held-out loss
from drifting), the preferred texts are not trained on alone: they are repeated into the
training part of the corpus until they make up `share` of the training tokens (default 30%).
The held-out part of the corpus stays untouched and measures what the tuning cost.

Optionally (`dislike_weight` > 0) the disliked completions (KTO `label` false, the rejected
side of DPO pairs) are mixed in too, about as many tokens of them as of the liked ones, and
their characters are pushed *down*: every token carries a kind (see `LIKE`, `DISLIKE`,
`IGNORE`) that the training loss (train/losses.py) reads. A disliked token costs `dislike_weight * log p`, an
unlikelihood term whose gradient falls mostly on the characters the model found unlikely
(the sampled slips that made the text bad, not the common letters around them); it stops at
p = `DISLIKE_FLOOR` so a disliked character is made rare, never impossible. The prompt of a
disliked row was not what was disliked: it is not trained on (`IGNORE`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from core.tokenizers import Tokenizer

Ids = npt.NDArray[np.int32]
Kinds = npt.NDArray[np.int8]
DEFAULT_SHARE = 0.3
DEFAULT_DISLIKE_WEIGHT = 0.0  # off: only the liked texts are learned from
DISLIKE_FLOOR = 0.02
# What the loss does with each training token's target (train/losses.py).
LIKE, DISLIKE, IGNORE = 0, 1, 2


class PreferencesError(ValueError):
    """A preferences file that cannot be trained on; the message names the line."""


@dataclass(frozen=True)
class PreferredTexts:
    """The texts a preferences file says were better, with where they came from."""

    texts: list[str]
    rows: int  # rows read (liked, disliked and pairs)
    sha256: str
    source: str
    # (prompt, completion) of each disliked KTO row and (prompt, rejected) of each DPO pair.
    disliked: tuple[tuple[str, str], ...] = ()


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


def _disliked(row: dict[str, object]) -> tuple[str, str] | None:
    """The (prompt, text) a checked row rejects: a disliked completion or a DPO pair's rejected side."""
    prompt, rejected = row["prompt"], row.get("rejected")
    if "chosen" in row:
        return (str(prompt), rejected) if isinstance(rejected, str) and rejected.strip() else None
    completion = row.get("completion")
    if row.get("label") is False and isinstance(completion, str) and completion.strip():
        return str(prompt), completion
    return None


def _made_at(row: dict[str, object]) -> float | None:
    """The temperature a KTO row's completion was sampled at (None: not recorded, or DPO)."""
    temperature = row.get("temperature")
    return float(temperature) if isinstance(temperature, (int, float)) and "chosen" not in row else None


@dataclass(frozen=True)
class JsonLines:
    """A JSON Lines file read whole: each row parsed, with its line number, and the file's sha256."""

    rows: tuple[tuple[int, Any], ...]  # json.loads gives Any: each loader checks its rows
    sha256: str
    source: str


def read_json_lines(path: Path) -> JsonLines:
    """Parse every non-blank line; PreferencesError names a missing file or the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise PreferencesError(f"{path}: no such file")
    raw = path.read_bytes()
    rows: list[tuple[int, Any]] = []
    for line_no, line in enumerate(raw.decode("utf-8", errors="strict").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((line_no, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise PreferencesError(f"{path}:{line_no}: not JSON ({exc.msg})") from None
    return JsonLines(tuple(rows), hashlib.sha256(raw).hexdigest(), str(path))


def load_preferred_texts(path: Path, *, min_temperature: float | None = None) -> PreferredTexts:
    """Read a KTO or DPO JSON Lines export (as `lstmbot export --format kto|dpo` writes).

    With `min_temperature`, KTO rows sampled at a lower temperature are skipped (rows that
    do not say are kept): rejection-sampling fine-tuning for the temperature the model is
    served at. Raters like cold samples for being cold; learning from them would only teach
    the model to be colder, which costs held-out loss, while the hot samples they liked
    are the model's own draws that went right. (How much either helps: docs/preferences-runs.md.)
    """
    path = Path(path)
    read = read_json_lines(path)
    texts: list[str] = []
    disliked: list[tuple[str, str]] = []
    for line_no, row in read.rows:
        text = _preferred(row, line_no, path)
        made_at = _made_at(row)
        if min_temperature is not None and made_at is not None and made_at < min_temperature:
            continue
        if text and text.strip():
            texts.append(text)
        bad = _disliked(row)
        if bad is not None:
            disliked.append(bad)
    if not texts:
        raise PreferencesError(f"{path}: no liked completion or chosen text to learn from")
    return PreferredTexts(texts, len(read.rows), read.sha256, read.source, tuple(disliked))


def mix_into_training(
    train_ids: Ids, texts: list[str], tokenizer: Tokenizer, *, share: float = DEFAULT_SHARE, seed: int = 0
) -> Ids:
    """The corpus' training ids with the preferred texts repeated in until they are `share` of it.

    Each text is one piece, separated by a blank line, and the pieces are shuffled into the
    corpus at random piece boundaries so a training window sees book and preference both.
    """
    ids, _ = mix_with_kinds(train_ids, texts, (), tokenizer, share=share, seed=seed)
    return ids


def mix_with_kinds(
    train_ids: Ids,
    texts: list[str],
    disliked: tuple[tuple[str, str], ...],
    tokenizer: Tokenizer,
    *,
    share: float = DEFAULT_SHARE,
    seed: int = 0,
) -> tuple[Ids, Kinds]:
    """As `mix_into_training`, with the disliked (prompt, completion) pairs mixed in as well.

    The liked texts are repeated until they are `share` of the result (less the disliked
    part); the disliked pairs are repeated until they weigh about as much as the liked texts.
    Returns the ids and, per token, its kind: LIKE for the corpus and the liked texts,
    DISLIKE for a disliked completion, IGNORE for its prompt and separator.
    """
    if not 0 < share < 1:
        raise PreferencesError(f"the preference share must be between 0 and 1, got {share}")
    separator = tokenizer.encode("\n\n")
    pieces = [np.asarray(separator + tokenizer.encode(text), dtype=np.int32) for text in texts]
    kinds = [np.full(len(p), LIKE, dtype=np.int8) for p in pieces]
    preferred_tokens = sum(len(p) for p in pieces)
    for prompt, completion in disliked:
        head, tail = separator + tokenizer.encode(prompt), tokenizer.encode(completion)
        pieces.append(np.asarray(head + tail, dtype=np.int32))
        kinds.append(
            np.concatenate([np.full(len(head), IGNORE, np.int8), np.full(len(tail), DISLIKE, np.int8)])
        )
    # Repeat the liked texts until they reach share / (1 - share) of the corpus' tokens, and the
    # disliked ones until they weigh as much (no more: there are often far more of them).
    wanted = share / (1 - share) * len(train_ids)
    repeats = max(1, round(wanted / max(1, preferred_tokens)))
    liked_count = len(texts)
    disliked_tokens = sum(len(p) for p in pieces[liked_count:])
    disliked_repeats = max(1, round(wanted / disliked_tokens)) if disliked_tokens else 0
    rng = np.random.default_rng(seed)
    inserted = [i for _ in range(repeats) for i in range(liked_count)]
    inserted += [i for _ in range(disliked_repeats) for i in range(liked_count, len(pieces))]
    # Cut the corpus at random points into as many chunks as there are pieces to place.
    cuts = np.sort(rng.choice(len(train_ids), size=len(inserted), replace=True))
    chunks = np.split(train_ids, cuts)
    order = rng.permutation(len(inserted))
    mixed: list[Ids] = [chunks[0]]
    mixed_kinds: list[Kinds] = [np.full(len(chunks[0]), LIKE, np.int8)]
    for slot, piece in enumerate(order):
        chunk = chunks[slot + 1]
        mixed.extend((pieces[inserted[piece]], chunk))
        mixed_kinds.extend((kinds[inserted[piece]], np.full(len(chunk), LIKE, np.int8)))
    return np.concatenate(mixed).astype(np.int32), np.concatenate(mixed_kinds)
