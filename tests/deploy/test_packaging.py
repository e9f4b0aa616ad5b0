"""pyproject.toml: the license as setuptools wants it now, and a build floor that can read it."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from packaging.licenses import canonicalize_license_expression
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def _pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def test_the_license_is_an_spdx_expression() -> None:
    # A TOML table ({ text = "MIT" }) is deprecated since setuptools 77 (a warning on every build).
    license = _pyproject()["project"]["license"]
    assert isinstance(license, str) and canonicalize_license_expression(license) == license


def test_the_build_floor_reads_an_spdx_license() -> None:
    # setuptools < 77 refuses a string `license` ("must be valid exactly by one definition").
    (setuptools,) = [
        req for req in map(Requirement, _pyproject()["build-system"]["requires"]) if req.name == "setuptools"
    ]
    assert setuptools.specifier.contains("77.0.3") and not setuptools.specifier.contains("76.1.0")
