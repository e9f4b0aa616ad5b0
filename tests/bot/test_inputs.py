"""Untrusted input: settings arguments, callback data, rendering limits and log redaction."""

from __future__ import annotations

import logging
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import keyboards as kb
from bot.limits import UserLimits
from bot.logs import RedactingFilter
from bot.parsing import LENGTH_BOUNDS, parse_length, parse_temperature
from bot.render import MESSAGE_LIMIT, sample_html, utf16_len

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
        ("n", kb.NextToRate()),
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
    assert action is None or isinstance(
        action, kb.Rate | kb.Again | kb.NextToRate | kb.SetTemperature | kb.SetModel | kb.Forget
    )


@pytest.mark.parametrize("data", ["r:12:*", "r:-1:+", "t:0.7", "t:nan", "m:../etc", "x" * 65, "r:1:+ ", ""])
def test_malformed_callback_data_is_refused(data: str) -> None:
    assert kb.parse(data) is None


def test_keyboard_counts_update_in_place() -> None:
    markup = kb.rating_keyboard(5, 0, 0, "en", with_next=True)
    updated = kb.with_votes(markup, 5, 3, 1)
    labels = [b.text for row in updated.inline_keyboard for b in row]
    assert labels[:2] == ["👍 3", "👎 1"] and len(updated.inline_keyboard) == 2
    assert kb.has_button(updated, "r:5:+") and not kb.has_button(updated, "r:6:+")


@given(seed=st.text(max_size=3000), body=st.text(max_size=6000))
def test_rendered_samples_fit_and_escape(seed: str, body: str) -> None:
    html_text = sample_html(
        seed=seed, continuation=body, model="m", temperature=0.5, length=10, unit="character", lang="en"
    )
    import html as html_lib
    import re

    plain = html_lib.unescape(re.sub(r"</?[bi]>", "", html_text))
    assert utf16_len(plain) <= MESSAGE_LIMIT
    assert "<script" not in html_text.lower()


def test_markup_in_seeds_is_escaped() -> None:
    out = sample_html(
        seed="<b>x</b> & *y*", continuation="<i>", model="m", temperature=1, length=1, unit="c", lang="en"
    )
    assert "&lt;b&gt;x&lt;/b&gt; &amp; *y*" in out and "&lt;i&gt;" in out


def test_rate_limit_and_one_in_flight() -> None:
    now = [1000.0]
    limits = UserLimits(3, clock=lambda: now[0])
    for _ in range(3):
        assert limits.retry_after(1) == 0
        limits.begin(1)
        limits.charge(1)  # a generation was made (a refused request is not charged)
        limits.end(1)
    assert limits.retry_after(1) == 60
    assert limits.retry_after(2) == 0  # other users are not affected
    now[0] += 30
    assert limits.retry_after(1) == 30
    now[0] += 31
    assert limits.retry_after(1) == 0
    limits.begin(1)
    assert limits.busy(1) and not limits.busy(2)


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
