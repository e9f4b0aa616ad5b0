"""A user who never chose a model starts on one in his client's language: prose before poems."""

from __future__ import annotations

import shutil
from pathlib import Path

from bot.generation import GenerationService
from bot.who import model_for_language
from core.bundle import load_bundle


def test_a_chinese_client_starts_on_the_prose_model_even_when_a_poem_model_sorts_first(
    tiny_bundle: Path, word_bundle: Path, poem_bundle: Path, tmp_path: Path
) -> None:
    # "a-tang" sorts before "zz-prose": the choice must come from what each model writes.
    poems = shutil.copytree(poem_bundle, tmp_path / "a-tang")
    prose = shutil.copytree(word_bundle, tmp_path / "zz-prose")
    paths = {"en": tiny_bundle, "a-tang": poems, "zz-prose": prose}
    bundles = {name: load_bundle(path) for name, path in paths.items()}
    service = GenerationService(bundles, default="en")
    assert model_for_language(service, "zh-hans") == "zz-prose"
    assert model_for_language(service, "en") == "en"
    only_poems = GenerationService({"en": bundles["en"], "a-tang": bundles["a-tang"]}, default="en")
    assert model_for_language(only_poems, "zh") == "a-tang"  # a Chinese model still beats English
