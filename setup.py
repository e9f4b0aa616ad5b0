"""The C kernel of the generator (core/qkernel.c); everything else is in pyproject.toml.

`optional=True`: without a C compiler the install still succeeds and the generator runs the same
product in numba (slower; `lstmbot eval` and the benchmarks say which one runs).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        # -ffp-contract=off: no implicit fused multiply-adds, so the product's scaling rounds the
        # same way in every code path (the AVX-512 one would otherwise fuse it, 1 ulp apart).
        Extension(
            "core._qkernel",
            # The product and the cell; the inputs' grid and the draw; the novelty index's search;
            # their Python entry points.
            ["core/qkernel.c", "core/qsample.c", "core/qsearch.c", "core/qpython.c"],
            extra_compile_args=["-O3", "-ffp-contract=off"],
            libraries=["m"],  # fmaf in the scalar cell update
            optional=True,
        ),
    ]
)
