"""Untrusted input: settings arguments, callback data, rendering limits and log redaction."""

from __future__ import annotations

import logging
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import keyboards as kb
from bot.logs import RedactingFilter
from bot.parsing import parse_acrostic, parse_length, parse_temperature
from bot.render import MESSAGE_LIMIT, SEED_SHOWN, clean, sample_html, shown_seed, utf16_len
from bot.texts import text
from bot.user_limits import UserLimits
from core.limits import LENGTH_BOUNDS
from sandbox.entities import parse_html

TOKEN = "123456789:AAFakeTokenFakeTokenFakeTokenFake12"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0.7", 0.7),
        ("0,7", 0.7),
        (" 1.2 ", 1.2),
        ("0", 0.0),
        ("-0", 0.0),
        ("2", 2.0),
        (".5", 0.5),
        ("０.７", 0.7),
    ],
)
def test_temperatures_accepted(raw: str, expected: float) -> None:
    assert parse_temperature(raw) == pytest.approx(expected)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "hot",
        "nan",
        "NaN",
        "inf",
        "-inf",
        "1e309",
        "1e-3",
        "2.01",
        "-0.5",
        "0.12345",
        "100",
        "1,2,3",
        "0x1",
        "🔥",
        "1 2",
    ],
)
def test_temperatures_refused(raw: str) -> None:
    assert parse_temperature(raw) is None


@given(st.text(max_size=40))
def test_any_string_gives_a_valid_temperature_or_none(raw: str) -> None:
    value = parse_temperature(raw)
    assert value is None or (math.isfinite(value) and 0.0 <= value <= 2.0)


@given(st.text(max_size=40), st.sampled_from(["char", "word"]))
def test_any_string_gives_a_valid_length_or_none(raw: str, level: str) -> None:
    value = parse_length(raw, level)
    low, high = LENGTH_BOUNDS[level]
    assert value is None or low <= value <= high


def test_lengths() -> None:
    assert parse_length("400", "char") == 400
    assert parse_length("４００", "char") == 400
    assert parse_length("5", "char") is None and parse_length("5", "word") == 5
    assert parse_length("99999999999", "char") is None and parse_length("-3", "char") is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("r:12:+", kb.Rate(12, 1)),
        ("r:12:-", kb.Rate(12, -1)),
        ("a:7", kb.Again(7)),
        ("n:9", kb.NextToRate(9)),
        ("d:3:t", kb.DuelVote(3, "tie")),
        ("vs:4", kb.StartDuel(4)),
        ("g:5:B", kb.GameVote(5, "B")),
        ("t:0.5", kb.SetTemperature(0.5)),
        ("m:nietzsche-char", kb.SetModel("nietzsche-char")),
        ("f:y:42", kb.Forget(True, 42)),
    ],
)
def test_callback_data_round_trip(data: str, expected: kb.Action) -> None:
    assert kb.parse(data) == expected


@given(st.text(max_size=80))
def test_forged_callback_data_never_raises(data: str) -> None:
    action = kb.parse(data)
    assert action is None or isinstance(action, kb.Action)


@pytest.mark.parametrize(
    "data", ["r:12:*", "r:-1:+", "n", "g:1:C", "d:1:z", "t:0.7", "t:nan", "m:../etc", "x" * 65, "r:1:+ ", ""]
)
def test_malformed_callback_data_is_refused(data: str) -> None:
    assert kb.parse(data) is None


def test_keyboard_counts_update_in_place() -> None:
    markup = kb.rating_keyboard(5, 0, 0, "en", with_next=True)
    updated = kb.with_votes(markup, 5, 3, 1)
    labels = [b.text for row in updated.inline_keyboard for b in row]
    # Two counts, then again, then next: rows short enough for a phone's width.
    assert labels[:2] == ["👍 3", "👎 1"] and len(updated.inline_keyboard) == 3
    assert kb.has_button(updated, "r:5:+") and not kb.has_button(updated, "r:6:+")


# Characters the bot drops on purpose (control and bidi-override characters: bot.render.clean).
_DROPPED = "".join(c for c in map(chr, range(0x2100)) if not clean(c))
# Markup, entity look-alikes, quotes, emoji sequences and CJK, mixed with any other character
# (the utf-8 codec leaves out lone surrogates, which no Telegram message can carry).
_TRICKY = ["<", ">", "&", "&amp;", "&lt;", "&#60;", "&#x3c;", '"', "'", "<b>", "</b>", "<i>", "</i>"]
_TRICKY += ["<script>", "<a href='x'>", "<!--", "-->", "<![CDATA[", "<?xml", "</", "&nbsp;", "\n", "\t"]
_TRICKY += ["🏳️‍🌈", "👩‍👩‍👧‍👦", "宝玉笑道", "שלום", "\U0001f600"]
_PIECE = st.one_of(st.sampled_from(_TRICKY), st.characters(codec="utf-8", exclude_characters=_DROPPED))
_FOOTER = text("en", "footer", model="m", temperature="0.5", length=10, unit="character")


def _user_text(pieces: int) -> st.SearchStrategy[str]:
    return st.lists(_PIECE, max_size=pieces).map("".join)


def _as_telegram_reads_it(seed: str, body: str) -> tuple[str, list[dict[str, object]]]:
    """The plain text and entities Telegram makes of the HTML the bot sends for a sample."""
    html_text = sample_html(
        seed=seed, continuation=body, model="m", temperature=0.5, length=10, unit="character", lang="en"
    )
    return parse_html(html_text)


def _entities(seed: str, body: str) -> list[dict[str, object]]:
    bold = [{"type": "bold", "offset": 0, "length": utf16_len(seed)}] if seed else []
    footer_at = utf16_len(seed + body) + 2
    return [*bold, {"type": "italic", "offset": footer_at, "length": utf16_len(_FOOTER)}]


# At most 12 code points a piece: 25 pieces fit SEED_SHOWN, and seed and body fit one message.
@given(seed=_user_text(25), body=_user_text(100))
def test_user_text_reaches_the_chat_exactly(seed: str, body: str) -> None:
    """Escaping is judged by what Telegram shows: the user's text, all of it, nothing more,
    and no formatting that the bot did not put there."""
    assert len(seed) <= SEED_SHOWN
    plain, entities = _as_telegram_reads_it(seed, body)
    assert plain == seed + body + "\n\n" + _FOOTER
    assert entities == _entities(seed, body)


@given(seed=st.text(max_size=3000), body=st.text(max_size=6000))
def test_any_text_is_shown_cleaned_and_cut_to_fit(seed: str, body: str) -> None:
    """Any text at all, control characters and far too long included: Telegram accepts the
    HTML, the seed shows as `shown_seed` says, the body as its cleaned start, and it fits."""
    plain, entities = _as_telegram_reads_it(seed, body)
    shown = shown_seed(seed)
    assert utf16_len(plain) <= MESSAGE_LIMIT
    assert plain.startswith(shown) and plain.endswith("\n\n" + _FOOTER)
    middle = plain[len(shown) : -len(_FOOTER) - 2]
    assert middle == clean(body) or (middle.endswith("…") and clean(body).startswith(middle[:-1]))
    assert entities == _entities(shown, middle)


def test_markup_in_seeds_is_escaped() -> None:
    out = sample_html(
        seed="<b>x</b> & *y*", continuation="<i>", model="m", temperature=1, length=1, unit="c", lang="en"
    )
    assert "&lt;b&gt;x&lt;/b&gt; &amp; *y*" in out and "&lt;i&gt;" in out


async def test_rate_limit_and_one_in_flight() -> None:
    now = [1000.0]
    limits = UserLimits(3, clock=lambda: now[0])
    for _ in range(3):
        assert await limits.retry_after(1) == 0
        await limits.begin(1)
        await limits.charge(1)  # a generation was made (a refused request is not charged)
        await limits.end(1)
    assert await limits.retry_after(1) == 60
    assert await limits.retry_after(2) == 0  # other users are not affected
    now[0] += 30
    assert await limits.retry_after(1) == 30
    now[0] += 31
    assert await limits.retry_after(1) == 0
    await limits.begin(1)
    assert await limits.busy(1) and not await limits.busy(2)


def test_token_is_redacted_from_messages_args_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redaction")
    redactor = RedactingFilter([TOKEN])
    caplog.handler.addFilter(redactor)
    try:
        logger.warning("calling https://api.telegram.org/bot%s/getMe", TOKEN)
        try:
            raise RuntimeError(f"failed for {TOKEN}")
        except RuntimeError:
            logger.exception("boom")
        logger.warning("another shaped token 987654321:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB")
    finally:
        caplog.handler.removeFilter(redactor)
    assert TOKEN not in caplog.text and "BBBBBBBBBBBBBBBBBBBBBBBB" not in caplog.text
    assert "bot***/getMe" in caplog.text


def test_log_records_carry_the_update_and_a_user_hash_not_the_id() -> None:
    import io
    import json as json_lib

    from bot.logs import ContextFilter, JsonFormatter, TextFormatter, update_context, user_hash

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("test.context")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        token = update_context.set({"update_id": 42, "user": user_hash(987654, "bot")})
        handler.setFormatter(JsonFormatter())
        logger.info("generated a sample")
        handler.setFormatter(TextFormatter())
        logger.info("again")
        update_context.reset(token)
        logger.info("outside an update")
    finally:
        logger.removeHandler(handler)
    first, second, third = stream.getvalue().splitlines()
    record = json_lib.loads(first)
    assert (
        record["update_id"] == 42
        and record["user"] == user_hash(987654, "bot")
        and record["msg"] == "generated a sample"
    )
    assert "987654" not in stream.getvalue() and len(record["user"]) == 12
    assert second.endswith(f"again [update=42 user={record['user']}]")
    assert "update=" not in third


def test_the_parser_the_schema_and_the_generator_share_one_set_of_limits() -> None:
    from bot.db.models import StoredSample as StoredRow
    from core import generator, limits

    assert generator.MAX_LENGTH == limits.MAX_LENGTH
    checks = {c.name: str(c.sqltext) for c in StoredRow.__table__.constraints if hasattr(c, "sqltext")}
    assert f"<= {limits.MAX_LENGTH}" in checks["ck_samples_length_range"]
    assert f"<= {limits.MAX_TEMPERATURE}" in checks["ck_samples_temperature_range"]
    assert parse_temperature(f"{limits.MAX_TEMPERATURE:g}") == limits.MAX_TEMPERATURE
    assert parse_temperature(f"{limits.MAX_TEMPERATURE + 0.001:g}") is None
    for level, (low, high) in limits.LENGTH_BOUNDS.items():
        assert parse_length(str(high), level) == high and parse_length(str(high + 1), level) is None
        assert low <= limits.default_length(level) <= high


def test_too_precise_names_only_in_range_numbers_with_too_many_decimals() -> None:
    from bot.parsing import too_precise

    assert too_precise("0.1234") and too_precise("１，２３４５") and too_precise(".12345")
    assert not too_precise("0.123") and not too_precise("2.5001") and not too_precise("hot")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("新年快乐", ("新年快乐", 5)),
        ("新年快乐 7", ("新年快乐", 7)),
        ("  新年快乐　７ ", ("新年快乐", 7)),  # ideographic space, full-width digit
        ("5 春花秋月", ("春花秋月", 5)),
        ("新年 快乐 7", ("新年快乐", 7)),
        ("新年快乐 6", None),
        ("新年快乐 5 7", None),
        ("", None),
        ("7", None),
        ("happy 5", None),
        ("新年，快乐", None),
        ("春" * 9, None),  # more than 8 lines (a 律诗 has 8)
        ("春" * 8, ("春" * 8, 5)),
    ],
)
def test_acrostic_arguments(raw: str, expected: tuple[str, int] | None) -> None:
    assert parse_acrostic(raw) == expected


@given(st.text(max_size=40))
def test_any_string_gives_a_valid_acrostic_or_none(raw: str) -> None:
    from core.acrostic import Acrostic

    parsed = parse_acrostic(raw)
    if parsed is not None:
        Acrostic(*parsed)  # never raises for what the parser accepts
