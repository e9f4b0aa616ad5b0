"""Rendering: user and model text escaped once, samples as messages that always fit, and the
counts a sample's buttons show.

Everything a message shows that came from a person or a model passes through `escape`
(HTML-escaped, control and bidi-override characters dropped); every body is measured in
UTF-16 units as Telegram counts them and fitted under its limit.
"""

from __future__ import annotations

import html
import re

from bot.db.models import StoredSample
from bot.generation import GenerationService
from bot.novelty_badge import badge
from bot.parsing import effective_length, format_temperature
from bot.texts import text
from core.acrostic import Acrostic, lines
from core.novelty import Novelty

MESSAGE_LIMIT = 4096  # Telegram's limit, counted in UTF-16 code units after entity parsing
SEED_SHOWN = 300  # a long seed is shown by its last part, which is also what the model read
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escape(value: str) -> str:
    """Text from a person or a model, safe inside HTML: cleaned and escaped."""
    return html.escape(clean(value), quote=False)


def utf16_len(value: str) -> int:
    """Length as Telegram counts it."""
    return len(value.encode("utf-16-le")) // 2


def clean(value: str) -> str:
    """Drop control and bidi-override characters that could garble the chat, keep the rest."""
    return _CONTROL.sub("", value)


def shown_seed(seed: str) -> str:
    """The seed as displayed: cleaned, and cut to its last part when long."""
    seed = clean(seed)
    return seed if len(seed) <= SEED_SHOWN else "…" + seed[-SEED_SHOWN:]


_COUPLET_END = re.compile(r"([。！？])(?=[^\n])")


def verse_layout(text: str) -> str:
    """A poem model's text as poems are printed: a couplet a line (after 。！？), a blank line
    between poems (the corpus has one poem per line)."""
    return "\n\n".join(_COUPLET_END.sub("\\1\n", poem) for poem in text.split("\n"))


def _fit(plain_parts: list[str], budget: int) -> list[str]:
    """Shorten the last (longest-growing) part until all parts fit in `budget` UTF-16 units."""
    total = sum(utf16_len(p) for p in plain_parts)
    if total <= budget:
        return plain_parts
    over = total - budget + 1
    last = plain_parts[-1]
    cut = last[: max(0, len(last) - over)]
    while utf16_len(cut) + total - utf16_len(last) > budget - 1 and cut:
        cut = cut[:-1]
    return [*plain_parts[:-1], cut + "…"]


def sample_html(
    *,
    seed: str,
    continuation: str,
    model: str,
    temperature: float,
    length: int,
    unit: str,
    lang: str,
    notes: list[str] | None = None,
    badge: str | None = None,
    verse: bool = False,
) -> str:
    """Seed in bold, then the continuation, then a footer with model and temperature (and the
    novelty badge when the sample copied a long run from its book); with `verse` (a poem
    model's sample), a couplet a line."""
    footer = text(
        lang, "footer", model=model, temperature=format_temperature(temperature), length=length, unit=unit
    )
    if badge:
        footer = f"{footer}\n{badge}"
    head = "\n".join(notes or [])
    seed_text, body_text = shown_seed(seed), clean(continuation)
    if verse:
        seed_text, body_text = verse_layout(seed_text), verse_layout(body_text)
        if seed_text[-1:] in "。！？" and body_text[:1] not in ("\n", ""):
            body_text = "\n" + body_text  # the seed ended a couplet: the next one on its own line
    seed_part, body = _fit([seed_text, body_text], MESSAGE_LIMIT - utf16_len(footer + head) - 8)
    parts = [html.escape(n, quote=False) for n in notes or []]
    parts.append(f"<b>{html.escape(seed_part, quote=False)}</b>{html.escape(body, quote=False)}")
    parts.append(f"<i>{html.escape(footer, quote=False)}</i>")
    return "\n\n".join(parts)


def acrostic_html(poem: str, acrostic: Acrostic, *, model: str, temperature: float, lang: str) -> str:
    """An acrostic poem, a line per row with its head character in bold, then the footer."""
    rows = [
        f"<b>{html.escape(line[:1], quote=False)}</b>{html.escape(clean(line[1:]), quote=False)}"
        for line in lines(poem, acrostic)
    ]
    footer = text(
        lang,
        "acrostic_footer",
        model=model,
        temperature=format_temperature(temperature),
        heads=acrostic.heads,
        chars=acrostic.line_length,
    )
    return "\n".join(rows) + f"\n\n<i>{html.escape(footer, quote=False)}</i>"


def excerpt(value: str, limit: int) -> str:
    """A one-line excerpt of at most `limit` characters."""
    flat = " ".join(clean(value).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def fit_lines(head: str, lines: list[str], tail: str, more: str, limit: int = MESSAGE_LIMIT) -> str:
    """`head`, as many whole `lines` as fit, `more` (formatted with how many were left out)
    when some were, and `tail`: a body that never exceeds Telegram's limit however many lines
    there are (a game's reveal with a hundred players)."""
    shown = list(lines)
    while True:
        left_out = len(lines) - len(shown)
        parts = [head, *shown, *([more.format(count=left_out)] if left_out else []), tail]
        body = "\n".join(p for p in parts if p)
        if utf16_len(body) <= limit - 16 or not shown:
            return body
        shown.pop()


def unit_of(generation: GenerationService, model: str, lang: str) -> tuple[str, str]:
    """The model's level ("char"/"word") and the word for one token in the user's language."""
    level = generation.info(generation.resolve(model)).level
    return level, text(lang, "unit_char" if level == "char" else "unit_word")


def stored_sample_html(
    generation: GenerationService, sample: StoredSample, lang: str, notes: list[str] | None = None
) -> str:
    """A stored sample as a message body (its length as shown: characters of a char sample,
    words of a word sample), with the novelty badge from the numbers stored with it."""
    if sample.acrostic:
        poem = Acrostic.from_spec(sample.acrostic)
        return acrostic_html(
            sample.text, poem, model=sample.model_name, temperature=sample.temperature, lang=lang
        )
    level, unit = unit_of(generation, sample.model_name, lang)
    stored = (
        Novelty(sample.longest_copied, sample.new_ngram_share)
        if sample.longest_copied is not None and sample.new_ngram_share is not None
        else None
    )
    return sample_html(
        verse=generation.info(generation.resolve(sample.model_name)).verse,
        seed=sample.seed,
        continuation=sample.text,
        model=sample.model_name,
        temperature=sample.temperature,
        length=sample.shown_length if sample.shown_length is not None else _old_shown(sample, level),
        unit=unit,
        lang=lang,
        notes=notes,
        badge=badge(stored, level, lang),
    )


def _old_shown(sample: StoredSample, level: str) -> int:
    # Stored before migration 0015: the characters of a char sample; a word sample's count was
    # not kept, so the length asked for.
    return len(sample.text) if level == "char" else sample.length


def settings_html(
    generation: GenerationService, model: str, temperature: float, length: int | None, lang: str
) -> str:
    """The three settings as HTML lines."""
    info = generation.info(generation.resolve(model))
    level, unit = unit_of(generation, info.name, lang)
    return text(
        lang,
        "settings",
        model=info.name,
        language=text(lang, f"lang_{'zh' if info.language == 'zh' else 'en'}"),
        unit=unit,
        temperature=f"{temperature:g}",
        length=effective_length(length, level),
    )
