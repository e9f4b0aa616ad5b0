"""The C kernel of the generator (core/qkernel.c); everything else is in pyproject.toml.

`optional=True`: without a C compiler the install still succeeds and the generator runs the same
product in numba (slower; `lstmbot eval` and the benchmarks say which one runs).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("core._qkernel", ["core/qkernel.c"], extra_compile_args=["-O3"], optional=True),
    ]
)
