"""From corpus text to token ids, the held-out split, and tf.data pipelines for both recipes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from core.tokenizers import CharTokenizer, Tokenizer, WordTokenizer
from train.corpus import Corpus, CorpusError
from train.recipes import TrainConfig

if TYPE_CHECKING:
    import tensorflow as tf

Ids = npt.NDArray[np.int32]
Kinds = npt.NDArray[np.int8]
MIN_WINDOWS = 100  # fewest training windows worth training on


@dataclass(frozen=True)
class Split:
    """Token ids of a corpus cut into the training part and the held-out last part."""

    tokenizer: Tokenizer
    train: Ids
    heldout: Ids
    heldout_chars: int  # characters the held-out tokens decode to (for bits per character)


def book_sequence_count(n_tokens: int, window: int, step: int) -> int:
    """How many (window -> next token) pairs the book's loop cuts from n tokens."""
    return len(range(0, n_tokens - window, step))


def fit_tokenizer(corpus: Corpus, config: TrainConfig) -> Tokenizer:
    """Build the vocabulary from the training part only, so held-out text stays unseen."""
    cut = int(len(corpus.text) * (1 - config.heldout_fraction))
    train_text = corpus.text[:cut]
    if config.level == "char":
        return CharTokenizer.fit(train_text, lowercase=config.lowercase, max_vocab=config.max_vocab)
    return WordTokenizer.fit(train_text, max_vocab=config.max_vocab)


def split_corpus(corpus: Corpus, config: TrainConfig, tokenizer: Tokenizer | None = None) -> Split:
    """Encode the corpus and cut off the last `heldout_fraction` of tokens, never trained on."""
    tokenizer = tokenizer or fit_tokenizer(corpus, config)
    ids = np.asarray(tokenizer.encode(corpus.text), dtype=np.int32)
    needed_tokens = int((MIN_WINDOWS * config.window + config.window + 1) / (1 - config.heldout_fraction)) + 1
    # Both parts need whole windows: training needs MIN_WINDOWS, held-out at least one.
    heldout_needed = int(np.ceil((config.window + 1) / config.heldout_fraction))
    needed = max(needed_tokens, heldout_needed)
    if len(ids) < needed:
        unit = "characters" if config.level == "char" else "words"
        raise CorpusError(
            f"corpus too small: {len(ids):,} {unit}; a window of {config.window} needs at least "
            f"{needed:,} {unit} (about {needed * (1 if config.level == 'char' else 2):,} characters)"
        )
    cut = int(len(ids) * (1 - config.heldout_fraction))
    heldout = ids[cut:]
    return Split(tokenizer, ids[:cut], heldout, len(tokenizer.decode(heldout.tolist())))


_SPEECH = re.compile(r"\n\n([A-Z][A-Za-z .']{1,40}:\n[^\n]{8,80})\n")


def seed_snippets(text: str, tokenizer: Tokenizer, *, count: int = 48, seed: int = 0) -> list[str]:
    """Short openings cut from the corpus at sentence starts, for "/gen" with no seed; from a
    play (speeches under speaker names), a speaker's name and first line, layout kept."""
    rng = np.random.default_rng(seed)
    speeches = _SPEECH.findall(text)
    if len(speeches) >= count * 4:  # a play: "ROMEO:\nIs the day so young?"
        picked = rng.choice(len(speeches), size=count, replace=False)
        return [tokenizer.normalize(speeches[int(i)]) for i in sorted(picked)]
    ends = [i + 1 for i, ch in enumerate(text) if ch in ".!?。！？" and i + 80 < len(text)]
    if not ends:
        return []
    snippets: list[str] = []
    for start in rng.choice(ends, size=min(count * 2, len(ends)), replace=False):
        chunk = " ".join(text[int(start) : int(start) + 120].split())
        while chunk and not chunk[0].isalnum():  # drop quotes and dashes left over from the cut
            chunk = chunk[1:]
        # Cut at a word boundary (or after 12 tokens for Chinese) so the seed reads naturally.
        if tokenizer.kind == "char" and chunk[:1] >= "\u2e80":
            # Chinese verse or prose by the character: one sentence (a couplet of a poem).
            stop = next((i for i, ch in enumerate(chunk[:40]) if ch in "。！？" and i >= 4), 39)
            chunk = chunk[: stop + 1]
        elif tokenizer.kind == "char":
            chunk = chunk[:60].rsplit(" ", 1)[0]
        else:
            chunk = "".join(tokenizer.split(chunk)[:12])
        if len(chunk) >= 8 and chunk not in snippets:
            snippets.append(chunk if tokenizer.kind == "word" else tokenizer.normalize(chunk))
        if len(snippets) == count:
            break
    return snippets


def heldout_windows(ids: Ids, window: int, stride: int = 1) -> tuple[Ids, Ids]:
    """Contexts of exactly `window` tokens and their next token, all inside the held-out part."""
    starts = np.arange(0, len(ids) - window, stride)
    contexts = np.lib.stride_tricks.sliding_window_view(ids, window)[starts]
    return np.ascontiguousarray(contexts), ids[starts + window]


def _label_table(ids: Ids, kinds: Kinds | None, vocab_size: int) -> Ids:
    """Targets as train/losses.py reads them: token + vocab_size * kind (just the ids if no kinds)."""
    if kinds is None:
        return ids
    return (ids.astype(np.int64) + vocab_size * kinds.astype(np.int64)).astype(np.int32)


def book_dataset(
    ids: Ids, config: TrainConfig, vocab_size: int, kinds: Kinds | None = None
) -> tf.data.Dataset:
    """The book's data: every `step`-th 60-token window -> next token, one-hot, shuffled.

    One-hot vectors are made per batch, not stored: identical inputs without the 685 MB array.
    """
    import tensorflow as tf

    starts = np.arange(0, len(ids) - config.window, config.step, dtype=np.int64)
    table = tf.constant(ids)
    labels = tf.constant(_label_table(ids, kinds, vocab_size))
    window = config.window

    def cut(start: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = table[start : start + window]
        if config.input == "onehot":
            x = tf.one_hot(x, vocab_size, dtype=tf.float32)
        return x, labels[start + window]

    return (
        tf.data.Dataset.from_tensor_slices(starts)
        .shuffle(len(starts), seed=config.seed, reshuffle_each_iteration=True)
        .map(cut, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(config.batch, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def fast_dataset(
    ids: Ids, config: TrainConfig, vocab_size: int, kinds: Kinds | None = None
) -> tf.data.Dataset:
    """Windows of `window` tokens, each position labelled with its next token.

    Window starts lie `window` apart with a fresh random shift every epoch, so one epoch sees
    every training token about once as a target and no two epochs cut the text alike.
    """
    import tensorflow as tf

    window = config.window
    limit = len(ids) - window - 1
    starts = np.arange(0, limit, window, dtype=np.int64)
    table = tf.constant(ids)
    labels = tf.constant(_label_table(ids, kinds, vocab_size))

    def cut(start: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        shift = tf.random.uniform((), 0, window, dtype=tf.int64)
        begin = tf.minimum(start + shift, limit)
        x = table[begin : begin + window]
        if config.input == "onehot":
            x = tf.one_hot(x, vocab_size, dtype=tf.float32)
        return x, labels[begin + 1 : begin + window + 1]

    return (
        tf.data.Dataset.from_tensor_slices(starts)
        .shuffle(len(starts), seed=config.seed, reshuffle_each_iteration=True)
        .map(cut, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(config.batch, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def training_dataset(
    ids: Ids, config: TrainConfig, vocab_size: int, kinds: Kinds | None = None
) -> tf.data.Dataset:
    """The dataset for the config's recipe; with `kinds`, labels carry them (train/losses.py)."""
    if config.recipe == "book":
        return book_dataset(ids, config, vocab_size, kinds)
    return fast_dataset(ids, config, vocab_size, kinds)
