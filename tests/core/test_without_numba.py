"""Serving imports no numba where the C kernel was built, and everything still works without it.

numba and LLVM cost ~110 MB of resident memory (bench/memory.py), so with the C kernel the
generator, the batcher and the novelty index call it through ctypes; hiding the extension
module sends the same calls to the numba fallbacks, which must give the same answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.lstm_step import KERNEL

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "models" / "nietzsche-char"

_HIDE_KERNEL = "import sys\nsys.modules['core._qkernel'] = None  # as if the C kernel was never built\n"
_SERVE = f"""
import json, sys
import numpy as np
from core.batching import RunningBatch
from core.bundle import load_bundle
from core.generator import Generator, Request
from core.lstm_step import KERNEL, draw_plain
from core.novelty import NoveltyIndex
import bot.generation, bot.novelty
g = Generator(load_bundle({str(SHIPPED)!r}))
sample = g.generate_one(Request("the will to truth", length=200, temperature=0.8, rng=3))
batch = RunningBatch(g)
batch.add(1, Request("supposing that truth", length=30, rng=4))
done = []
while not done:
    done = batch.step()
rng = np.random.default_rng(0)
book = rng.integers(0, 40, size=20000)
index = NoveltyIndex(book)
query = np.concatenate([book[500:560], rng.integers(0, 40, size=100), book[9000:9013]])
logits = (rng.normal(size=(300, 61)) * 3).astype(np.float32)
picks = draw_plain(logits, rng.choice([0.0, 0.3, 1.0, 2.0], size=300), rng.random(300), 0)
print(json.dumps({{
    "kernel": KERNEL,
    "numba": sorted(m for m in ("numba", "llvmlite") if m in sys.modules),
    "ids": sample.token_ids,
    "batched": done[0][1].token_ids,
    "novelty": [index.check(query).longest_copied, index.check(query).new_ngram_share],
    "picks": picks.tolist(),
}}))
"""


def _serve(hide_kernel: bool) -> dict[str, object]:
    script = (_HIDE_KERNEL if hide_kernel else "") + _SERVE
    command = [sys.executable, "-c", script]
    out = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    result: dict[str, object] = json.loads(out.stdout.splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def with_c() -> dict[str, object]:
    if not KERNEL.startswith("C"):
        pytest.fail(f"the C kernel was not built: {KERNEL}")
    return _serve(hide_kernel=False)


def test_serving_with_the_c_kernel_never_imports_numba(with_c: dict[str, object]) -> None:
    assert str(with_c["kernel"]).startswith("C")
    assert with_c["numba"] == []


def test_without_the_c_kernel_numba_serves_the_same_answers(with_c: dict[str, object]) -> None:
    fallback = _serve(hide_kernel=True)
    assert str(fallback["kernel"]).startswith("numba")
    assert fallback["numba"] == ["llvmlite", "numba"]
    # The product and the draw are the same integers and the same float operations; the novelty
    # search is integers only.
    assert fallback["picks"] == with_c["picks"]
    assert fallback["novelty"] == with_c["novelty"]
    assert with_c["novelty"][0] == 60  # type: ignore[index]
    # The numba cell may round its last float32 bit differently (the C one fuses multiply-adds),
    # so a sample could in principle part ways; it is whole and valid either way.
    ids, batched = fallback["ids"], fallback["batched"]
    assert isinstance(ids, list) and len(ids) == 200 and 0 not in ids
    assert isinstance(batched, list) and len(batched) == 30
