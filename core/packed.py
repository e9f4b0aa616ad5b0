"""A generator's int8 weights, packed once per bundle and read back from the cache at every start.

Packing (core/quant.py) needs the float32 weights: importing h5py, parsing weights.h5 and
quantising the matrices row by row in float64 took ~100 ms of a cold `lstmbot generate` whose
whole budget is 500 ms. The packed arrays are a pure function of the weights file, so they are
kept in the cache folder (core/cache.py) under the sha256 that loading already checked, and a
later start reads ~5 MB back instead (a bundle loaded with `weights="lazy"` then never parses
weights.h5). An entry that is missing, torn or of another shape is rebuilt, never trusted.

Layer 0's token table goes in the entry when it is small (one-hot models: vocab x 4 * units);
a big one (the word model's, 31 MB) keeps its own mapped entry, as before (`first_table`).
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from core.bundle import Bundle
from core.cache import cache_key, cached_array, write_atomically
from core.quant import QuantMatrix

log = logging.getLogger(__name__)
F32 = npt.NDArray[np.float32]

PACK_FORMAT = 1  # bump when QuantMatrix's layout or how the tables are computed changes
# Layer 0's token table is cached on disk (and mapped) from this size up: the word model's is
# 8000 x 1024 float32, 31 MB, of which a server touches only the rows of tokens it generates.
TABLE_CACHE_BYTES = 1 << 20
TABLE_SLICE = 512  # embedding rows multiplied at a time (float64: 512 x 4096 x 8 = 16 MB)


@dataclass(frozen=True)
class Int8Weights:
    """What the int8 generator multiplies: per LSTM layer its matrix (layer 0: the recurrent
    kernel; above: [input kernel; recurrent kernel]) and the table added after the product
    (layer 0: one row per token; above: the bias as one row), then the output layer."""

    matrices: tuple[QuantMatrix, ...]
    tables: tuple[F32, ...]
    dense: QuantMatrix
    dense_bias: F32  # (1, vocab)


def first_table(bundle: Bundle, w: Mapping[str, np.ndarray], cache_dir: Path | None) -> F32:
    """Layer 0's input product for every token: the embedding (or the one-hot identity) times
    the input kernel, plus the bias, in float32, shape (vocab, 4 * units).

    Mapped from `cache_dir` where it is big and the bundle's weights have a sha256 to key it by
    (the same bytes as computed here: it was computed here once)."""

    def build() -> F32:
        from threadpoolctl import threadpool_limits

        # In float64 on one BLAS thread, then rounded: a float32 product's last bits followed
        # BLAS's thread count (OpenBLAS splits the sums by thread), so two generators of one
        # process, built before and after the bot limited BLAS to one thread, wrote different
        # text for the same seed and rng. Rows a slice at a time (the word model's whole table
        # in float64 would be 262 MB).
        kernel0 = w["lstm_0/kernel"].astype(np.float64)
        bias = w["lstm_0/bias"].astype(np.float64)
        if bundle.model.input != "embedding":  # one-hot inputs: the kernel's rows are the table
            return (kernel0 + bias).astype(np.float32)
        embeddings = w["embedding/embeddings"]
        table = np.empty((len(embeddings), kernel0.shape[1]), dtype=np.float32)
        with threadpool_limits(limits=1, user_api="blas"):
            for start in range(0, len(embeddings), TABLE_SLICE):
                rows = embeddings[start : start + TABLE_SLICE].astype(np.float64)
                table[start : start + TABLE_SLICE] = rows @ kernel0 + bias
        return table

    shape = _table0_shape(bundle)
    if cache_dir is None or not bundle.weights_sha256 or not _table0_is_big(bundle):
        return build()
    key = cache_key(weights=bundle.weights_sha256, input=bundle.model.input, what="layer 0 table, float64")
    table: F32 = cached_array(cache_dir, "table0", key, build, dtype=np.float32, shape=shape)
    return table


def _table0_shape(bundle: Bundle) -> tuple[int, int]:
    return bundle.model.vocab_size, 4 * bundle.model.lstm_units[0]


def _table0_is_big(bundle: Bundle) -> bool:
    rows, columns = _table0_shape(bundle)
    return rows * columns * 4 >= TABLE_CACHE_BYTES


def stacked_kernel(w: Mapping[str, np.ndarray], layer: int) -> npt.NDArray[np.floating]:
    """The float32 kernel layer `layer` multiplies (see `Int8Weights`)."""
    if layer == 0:
        return w["lstm_0/recurrent_kernel"]
    return np.vstack([w[f"lstm_{layer}/kernel"], w[f"lstm_{layer}/recurrent_kernel"]])


def pack(bundle: Bundle, cache_dir: Path | None) -> Int8Weights:
    """Quantise the bundle's float32 weights (reads them all)."""
    w = bundle.weights
    layers = range(len(bundle.model.lstm_units))
    tables = [first_table(bundle, w, cache_dir)]
    tables += [np.ascontiguousarray(w[f"lstm_{i}/bias"][None, :], dtype=np.float32) for i in layers[1:]]
    return Int8Weights(
        tuple(QuantMatrix.from_kernel(stacked_kernel(w, i)) for i in layers),
        tuple(tables),
        QuantMatrix.from_kernel(w["dense/kernel"]),
        np.ascontiguousarray(w["dense/bias"][None, :], dtype=np.float32),
    )


def int8_weights(bundle: Bundle, cache_dir: Path | None) -> Int8Weights:
    """The bundle's int8 weights: read from `cache_dir` when a sound entry is there, else packed
    (and stored there for the next start; a folder that cannot be written only logs)."""
    if cache_dir is None or not bundle.weights_sha256:
        return pack(bundle, cache_dir)
    path = cache_dir / f"int8-{_key(bundle)[:32]}.npz"
    found = _read(path, bundle, cache_dir)
    if found is not None:
        return found
    packed = pack(bundle, cache_dir)
    try:
        _write(path, packed, keep_table0=not _table0_is_big(bundle))
    except OSError as exc:
        log.warning("could not write the cache file %s: %s", path, exc)
    return packed


def _key(bundle: Bundle) -> str:
    return cache_key(weights=bundle.weights_sha256, what="int8 weights", pack_format=PACK_FORMAT)


def _arrays(packed: Int8Weights, keep_table0: bool) -> dict[str, npt.NDArray[np.generic]]:
    named = [*((f"layer{i}", m) for i, m in enumerate(packed.matrices)), ("dense", packed.dense)]
    arrays: dict[str, npt.NDArray[np.generic]] = {}
    for name, m in named:
        arrays |= {f"{name}.packed": m.packed, f"{name}.scale": m.scale, f"{name}.corr": m.corr}
    for i, table in enumerate(packed.tables):
        if i > 0 or keep_table0:
            arrays[f"layer{i}.table"] = np.asarray(table)
    arrays["dense.bias"] = packed.dense_bias
    return arrays


def _write(path: Path, packed: Int8Weights, *, keep_table0: bool) -> None:
    write_atomically(path, lambda fh: np.savez(fh, allow_pickle=False, **_arrays(packed, keep_table0)))


class _Unfit(Exception):
    """A cache entry's array is missing or not of this model's dtype and shape."""


def _read(path: Path, bundle: Bundle, cache_dir: Path) -> Int8Weights | None:
    """The entry at `path`, or None where it is absent, unreadable or not of this model's shapes."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        if path.exists():
            log.warning("rebuilding the cache file %s: %s", path, exc)
        return None
    units, vocab = bundle.model.lstm_units, bundle.model.vocab_size
    try:
        widths = [units[0], *(units[i - 1] + units[i] for i in range(1, len(units)))]
        matrices = [
            _matrix(arrays, f"layer{i}", 4 * u, width)
            for i, (u, width) in enumerate(zip(units, widths, strict=True))
        ]
        if _table0_is_big(bundle):
            tables = [first_table(bundle, bundle.weights, cache_dir)]  # its own mapped entry
        else:
            tables = [_float_rows(arrays, "layer0.table", _table0_shape(bundle))]
        tables += [_float_rows(arrays, f"layer{i}.table", (1, 4 * units[i])) for i in range(1, len(units))]
        dense = _matrix(arrays, "dense", vocab, units[-1])
        dense_bias = _float_rows(arrays, "dense.bias", (1, vocab))
    except _Unfit as exc:
        log.warning("rebuilding the cache file %s: %s is not this model's", path, exc)
        return None
    return Int8Weights(tuple(matrices), tuple(tables), dense, dense_bias)


def _float_rows(arrays: Mapping[str, np.ndarray], name: str, shape: tuple[int, int]) -> F32:
    rows: F32 = _part(arrays, name, np.float32, shape)
    return rows


def _matrix(arrays: Mapping[str, np.ndarray], name: str, outputs: int, inputs: int) -> QuantMatrix:
    rows, kpad = QuantMatrix.padded(outputs, inputs)
    packed = _part(arrays, f"{name}.packed", np.int8, (rows * kpad,))
    scale = _part(arrays, f"{name}.scale", np.float32, (rows,))
    corr = _part(arrays, f"{name}.corr", np.float32, (rows,))
    return QuantMatrix(packed, scale, corr, outputs, inputs, kpad)


def _part(
    arrays: Mapping[str, np.ndarray], name: str, dtype: type[np.generic], shape: tuple[int, ...]
) -> Any:
    array = arrays.get(name)
    if array is None or array.dtype != dtype or array.shape != shape:
        raise _Unfit(name)
    return np.ascontiguousarray(array)
