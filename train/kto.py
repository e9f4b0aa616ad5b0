"""KTO fine-tuning (Ethayarajh et al. 2024, "KTO: Model Alignment as Prospect Theoretic Optimization").

The objective of Hugging Face TRL's ``KTOTrainer``, written for our Keras LSTM. Each rated
sample is a row (prompt, completion, desirable?). Its implied reward is the log-likelihood
ratio of the completion under the model being tuned and under the frozen base model:

    r = log πθ(completion | prompt) − log πref(completion | prompt)   (summed over its tokens)

and its loss, with z0 a reference point,

    desirable:    λD · (1 − σ(β · (r − z0)))
    undesirable:  λU · (1 − σ(β · (z0 − r)))

z0 estimates KL(πθ ‖ πref) as TRL does: from mismatched pairs (each row's prompt with another
row's completion), r averaged over the batch, clamped at 0 and detached (no gradient flows
through it). A mismatched completion is one the prompt did not produce, so raising every
completion alike raises z0 too and earns nothing; only what separates the liked from the
disliked does. Each row's mismatched partner is fixed (the next row's completion), so the
reference side of both is computed once, before training.

λD and λU are balanced by counts (the paper's advice: λD·nD / λU·nU in [1, 4/3]): we take
λD·nD = λU·nU exactly, the rarer class weighted up and the other at 1.

Scoring is the served model's: `core.Generator` primes a zero state on the last `window`
tokens of the prompt and then steps through the completion without resetting, so a
completion token is conditioned on the prompt's last `window` tokens and every completion
token before it. Here that is one pass of the same layers (all LSTMs return sequences)
over those ids, without dropout (TRL also disables dropout: it would make r noisy and
non-zero at the start).

So that the model does not forget its book, every step also takes the ordinary
cross-entropy on a batch of corpus windows (dropout on, as in pre-training), weighted by
`corpus_weight`: loss = KTO + corpus_weight · CE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from core.keras_model import SOFTMAX
from core.tokenizers import Tokenizer
from train.preferences import PreferencesError, read_json_lines

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

DEFAULT_BETA = 0.1
DEFAULT_CORPUS_WEIGHT = 4.0  # 1 cost 0.046 nats/char in the bench; 4 kept it to ~0.02
DEFAULT_BATCH = 16
F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]


@dataclass(frozen=True)
class KtoRow:
    """One rated completion."""

    prompt: str
    completion: str
    desirable: bool


@dataclass(frozen=True)
class KtoRows:
    """The rows of a preferences file, with where they came from."""

    rows: tuple[KtoRow, ...]
    read: int  # lines read
    sha256: str
    source: str

    @property
    def desirable(self) -> int:
        """How many rows are desirable."""
        return sum(row.desirable for row in self.rows)


def check_beta(beta: float) -> float:
    """β as a positive, finite number (raises PreferencesError otherwise)."""
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta > 0):
        raise PreferencesError(f"the KTO beta must be a positive number, got {beta}")
    return float(beta)


def load_kto_rows(path: Path, *, min_temperature: float | None = None) -> KtoRows:
    """Read a KTO export (or a DPO one: chosen -> desirable, rejected -> undesirable).

    With `min_temperature`, KTO rows sampled colder are skipped (as in train/preferences.py).
    Rows with an empty completion are skipped: they have no tokens to score.
    """
    path = Path(path)
    read = read_json_lines(path)
    rows: list[KtoRow] = []
    for line_no, row in read.rows:
        rows.extend(_rows_of(row, line_no, path, min_temperature))
    if not any(r.desirable for r in rows) or all(r.desirable for r in rows):
        raise OneSidedRows(rows[0].desirable if rows else None, len(rows), path)
    return KtoRows(tuple(rows), len(read.rows), read.sha256, read.source)


class OneSidedRows(PreferencesError):
    """KTO rows that are all liked, all disliked, or none: KTO needs both kinds. `liked` is None
    for no rows; each command says what to do about it (`lstmbot train`: --preference-loss sft)."""

    def __init__(self, liked: bool | None, count: int, path: Path) -> None:
        verdict = "liked" if liked else "disliked"
        kind = (
            "no rows"
            if liked is None
            else f"its one row {verdict}"
            if count == 1
            else f"all {count} rows {verdict}"
        )
        super().__init__(f"{path}: KTO needs both liked and disliked completions, and has {kind}")
        self.liked, self.count = liked, count


def _rows_of(row: object, line: int, path: Path, min_temperature: float | None) -> list[KtoRow]:
    if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
        raise PreferencesError(f"{path}:{line}: expected a JSON object with a text 'prompt'")
    prompt: str = row["prompt"]
    if "chosen" in row:
        chosen, rejected = row.get("chosen"), row.get("rejected")
        if not isinstance(chosen, str) or not isinstance(rejected, str):
            raise PreferencesError(f"{path}:{line}: 'chosen' and 'rejected' must be text")
        pairs = [(chosen, True), (rejected, False)]
        return [KtoRow(prompt, text, good) for text, good in pairs if text]
    if "completion" not in row or "label" not in row:
        raise PreferencesError(f"{path}:{line}: neither a KTO row (completion, label) nor a DPO row (chosen)")
    completion, label = row["completion"], row["label"]
    if not isinstance(completion, str) or not isinstance(label, bool):
        raise PreferencesError(f"{path}:{line}: 'completion' must be text and 'label' true or false")
    temperature = row.get("temperature")
    if (
        min_temperature is not None
        and isinstance(temperature, (int, float))
        and temperature < min_temperature
    ):
        return []
    return [KtoRow(prompt, completion, label)] if completion else []


@dataclass(frozen=True)
class Encoded:
    """Rows as model inputs: ids (n, L) right-padded; mask (n, L) marks the completion targets.

    Position t of the input predicts ids[:, t + 1]; `mask[:, t]` is 1 where that target is a
    completion token (the last column is always 0).
    """

    ids: I32
    mask: F32


def encode_pairs(pairs: list[tuple[str, str]], tokenizer: Tokenizer, window: int) -> Encoded:
    """(prompt, completion) pairs as the served model reads them: the prompt's last `window` ids,
    then the completion's. A pair with an empty prompt scores its completion from the 2nd token."""
    seqs: list[tuple[list[int], int]] = []
    for prompt, completion in pairs:
        head = tokenizer.encode(prompt)[-window:] if prompt else []
        seqs.append((head + tokenizer.encode(completion), max(1, len(head))))
    length = max(len(ids) for ids, _ in seqs)
    out = np.zeros((len(seqs), length), np.int32)
    mask = np.zeros((len(seqs), length), np.float32)
    for row, (ids, first) in enumerate(seqs):
        out[row, : len(ids)] = ids
        mask[row, first - 1 : len(ids) - 1] = 1.0
    return Encoded(out, mask)


def kto_losses(
    logp: Any, ref_logp: Any, desirable: Any, z0: Any, *, beta: float, lambda_d: float, lambda_u: float
) -> Any:
    """Per-row KTO loss (keras ops); `z0` must already be detached and clamped."""
    import keras

    ops = keras.ops
    r = logp - ref_logp
    good = lambda_d * (1.0 - ops.sigmoid(beta * (r - z0)))
    bad = lambda_u * (1.0 - ops.sigmoid(beta * (z0 - r)))
    return ops.where(desirable, good, bad)


def sequence_log_probs(model: keras.Model, ids: Any, mask: Any) -> Any:
    """Summed log-probability of each row's masked targets, without dropout.

    Runs the model's own layers over the whole row (any length): the LSTMs must return
    sequences. Logits are taken before the softmax so log-probabilities stay exact.
    """
    import keras

    ops = keras.ops
    x = ids[:, :-1]
    vocab = model.get_layer("dense").units
    if model.inputs[0].dtype != "int32":  # one-hot input (the book's model)
        x = ops.one_hot(x, vocab)
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or layer.name in ("dense", SOFTMAX):
            continue
        x = layer(x, training=False)
    dense = model.get_layer("dense")
    logits = ops.matmul(x, dense.kernel) + dense.bias
    log_p = ops.log_softmax(logits, axis=-1)
    picked = ops.take_along_axis(log_p, ops.expand_dims(ids[:, 1:], -1), axis=-1)[..., 0]
    return ops.sum(picked * mask[:, :-1], axis=-1)


def reference_log_probs(model: keras.Model, encoded: Encoded, batch: int = 32) -> F32:
    """log πref of every row, once, with the base weights (the model before any step)."""
    import keras

    out = [
        keras.ops.convert_to_numpy(
            sequence_log_probs(model, encoded.ids[i : i + batch], encoded.mask[i : i + batch])
        )
        for i in range(0, len(encoded.ids), batch)
    ]
    return np.concatenate(out).astype(np.float32)


@dataclass(frozen=True)
class KtoSettings:
    """The objective's knobs, recorded in the bundle."""

    beta: float = DEFAULT_BETA
    corpus_weight: float = DEFAULT_CORPUS_WEIGHT
    batch: int = DEFAULT_BATCH
    lambda_d: float = 1.0
    lambda_u: float = 1.0

    def as_dict(self) -> dict[str, float | int]:
        """JSON-ready form."""
        return {
            "beta": self.beta,
            "corpus_weight": self.corpus_weight,
            "batch": self.batch,
            "lambda_d": round(self.lambda_d, 6),
            "lambda_u": round(self.lambda_u, 6),
        }


def balanced_lambdas(desirable: int, undesirable: int) -> tuple[float, float]:
    """λD, λU with λD·nD = λU·nU; the more common class gets weight 1."""
    if desirable >= undesirable:
        return 1.0, desirable / undesirable
    return undesirable / desirable, 1.0


@dataclass(frozen=True)
class KtoData:
    """Everything a KTO step reads about the rows, reference side included."""

    rows: Encoded
    kl: Encoded  # row i's prompt with row (i + 1)'s completion
    desirable: npt.NDArray[np.bool_]
    ref: F32
    kl_ref: F32


def prepare(model: keras.Model, rows: KtoRows, tokenizer: Tokenizer, window: int) -> KtoData:
    """Encode the rows and their mismatched pairs and score both under the (still base) model."""
    items = rows.rows
    pairs = [(r.prompt, r.completion) for r in items]
    shifted = [(items[i].prompt, items[(i + 1) % len(items)].completion) for i in range(len(items))]
    encoded, kl = encode_pairs(pairs, tokenizer, window), encode_pairs(shifted, tokenizer, window)
    desirable = np.array([r.desirable for r in items])
    return KtoData(
        encoded, kl, desirable, reference_log_probs(model, encoded), reference_log_probs(model, kl)
    )


def kto_dataset(data: KtoData, batch: int, seed: int) -> tf.data.Dataset:
    """Batches of rows (with their mismatched pairs), reshuffled every pass, forever."""
    import tensorflow as tf

    batch = min(batch, len(data.desirable))
    tensors = (
        data.rows.ids, data.rows.mask, data.desirable, data.ref, data.kl.ids, data.kl.mask, data.kl_ref,
    )  # fmt: skip
    return (
        tf.data.Dataset.from_tensor_slices(tensors)
        .shuffle(len(data.desirable), seed=seed, reshuffle_each_iteration=True)
        .batch(batch, drop_remainder=True)
        .repeat()
    )


def kto_model_class() -> type[keras.Model]:
    """A functional Keras model whose `fit` takes ((x, y), kto batch) and trains KTO + CE."""
    import keras
    import tensorflow as tf

    @keras.saving.register_keras_serializable(package="lstmbot")
    class KtoModel(keras.Model):
        settings = KtoSettings()

        def train_step(self, data: Any) -> dict[str, Any]:
            (x, y), (ids, mask, desirable, ref, kl_ids, kl_mask, kl_ref) = data
            s = self.settings
            # z0: KL(πθ‖πref) from the mismatched pairs, batch mean, clamped, no gradient.
            kl_logp = sequence_log_probs(self, kl_ids, kl_mask)
            z0 = tf.stop_gradient(tf.maximum(tf.reduce_mean(kl_logp - kl_ref), 0.0))
            with tf.GradientTape() as tape:
                logp = sequence_log_probs(self, ids, mask)
                kto = tf.reduce_mean(
                    kto_losses(
                        logp, ref, desirable, z0, beta=s.beta, lambda_d=s.lambda_d, lambda_u=s.lambda_u
                    )
                )
                probs = self(x, training=True)
                ce = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, probs))
                loss = kto + s.corpus_weight * ce
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply(grads, self.trainable_variables)
            r = logp - ref
            good = tf.cast(desirable, r.dtype)
            return {
                "loss": loss,
                "kto": kto,
                "ce": ce,
                "kl": z0,
                "reward_desirable": tf.reduce_sum(r * good) / tf.maximum(tf.reduce_sum(good), 1.0),
                "reward_undesirable": tf.reduce_sum(r * (1 - good))
                / tf.maximum(tf.reduce_sum(1 - good), 1.0),
            }

    return KtoModel


def kto_model(model: keras.Model, settings: KtoSettings) -> keras.Model:
    """The same layers (and weights) as `model`, trained by KTO + corpus cross-entropy."""
    cls = kto_model_class()
    wrapped = cls(model.inputs, model.outputs, name=model.name)
    wrapped.settings = settings
    return wrapped
