"""Export samples with their settings and rating aggregates, for fine-tuning.

Rows are streamed from the database in batches (``yield_per``: a server-side cursor on
PostgreSQL, ``fetchmany`` on SQLite) and written one at a time, so memory stays constant
however many samples there are. Nothing that identifies a person (Telegram ids, names, chat
titles) is exported unless ``include_users`` is asked for. In CSV, text cells that a spreadsheet
would run as a formula get a leading quote (``'=1+1``); JSON lines keep every value exact.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any, Literal, TextIO

from sqlalchemy import Label, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Chat, StoredSample, User

Format = Literal["jsonl", "csv"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv")
DEFAULT_BATCH_SIZE = 500
# First characters that make Excel, LibreOffice or Sheets read a cell as a formula: OWASP's
# list (= + - @ tab CR, and their full-width forms) plus NUL, which ASVS adds.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20", "\x00")

_SAMPLE_COLUMNS: tuple[Label[Any], ...] = (
    StoredSample.id.label("id"),
    StoredSample.created_at.label("created_at"),
    Chat.type.label("chat_type"),
    StoredSample.model_name.label("model_name"),
    StoredSample.model_version.label("model_version"),
    StoredSample.seed.label("seed"),
    StoredSample.text.label("text"),
    StoredSample.temperature.label("temperature"),
    StoredSample.length.label("length"),
    StoredSample.rng_seed.label("rng_seed"),
    StoredSample.generation_ms.label("generation_ms"),
    StoredSample.delivered.label("delivered"),
    StoredSample.up_votes.label("up_votes"),
    StoredSample.down_votes.label("down_votes"),
    (StoredSample.up_votes - StoredSample.down_votes).label("net_votes"),
    StoredSample.longest_copied.label("longest_copied"),
    StoredSample.new_ngram_share.label("new_ngram_share"),
    StoredSample.shared.label("shared"),
)
_USER_COLUMNS: tuple[Label[Any], ...] = (
    User.telegram_id.label("user_telegram_id"),
    User.display_name.label("user_display_name"),
    User.language_code.label("user_language_code"),
    Chat.telegram_id.label("chat_telegram_id"),
    Chat.title.label("chat_title"),
)


def export_fields(*, include_users: bool = False) -> list[str]:
    """The field names of an export, in output order."""
    columns = _SAMPLE_COLUMNS + (_USER_COLUMNS if include_users else ())
    return [column.name for column in columns]


def parse_since(text: str) -> datetime:
    """Parse ``--since``: a date (midnight UTC) or an ISO datetime (naive means UTC)."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date: use YYYY-MM-DD or an ISO datetime") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def iter_export_rows(
    session: AsyncSession,
    *,
    since: datetime | None = None,
    min_votes: int | None = None,
    model_name: str | None = None,
    include_users: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> AsyncIterator[dict[str, Any]]:
    """Yield one dict per sample, oldest first, fetching ``batch_size`` rows at a time.

    ``since`` keeps samples created at or after it; ``min_votes`` keeps samples whose net
    votes (up minus down) are at least that many, i.e. the well-rated ones to fine-tune on;
    ``model_name`` keeps one model's samples.
    """
    columns = _SAMPLE_COLUMNS + (_USER_COLUMNS if include_users else ())
    stmt = select(*columns).join(Chat, StoredSample.chat_id == Chat.id)
    if include_users:
        stmt = stmt.join(User, StoredSample.user_id == User.id)
    if since is not None:
        stmt = stmt.where(StoredSample.created_at >= since)
    if min_votes is not None:
        stmt = stmt.where(StoredSample.up_votes - StoredSample.down_votes >= min_votes)
    if model_name is not None:
        stmt = stmt.where(StoredSample.model_name == model_name)
    stmt = stmt.order_by(StoredSample.id).execution_options(yield_per=batch_size)
    result = await session.stream(stmt)
    try:
        async for row in result.mappings():
            yield dict(row)
    finally:
        await result.close()


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def neutralise_formula(cell: str) -> str:
    """Prefix a quote to text a spreadsheet would run as a formula (OWASP's CSV injection rule).

    Only text is touched: a negative number stays a number.
    """
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)  # 1/0 reads back the same everywhere, unlike True/False
    if isinstance(value, str):
        return neutralise_formula(value)
    return value


async def write_export(
    session: AsyncSession,
    out: TextIO,
    *,
    format: Format,
    since: datetime | None = None,
    min_votes: int | None = None,
    model_name: str | None = None,
    include_users: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Write the export to ``out`` as JSON lines or CSV (with a header); returns the row count.

    For CSV, open ``out`` with ``newline=""`` so that line breaks inside texts survive; text
    that would start a formula is prefixed with a quote (see ``neutralise_formula``).
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    rows = iter_export_rows(
        session,
        since=since,
        min_votes=min_votes,
        model_name=model_name,
        include_users=include_users,
        batch_size=batch_size,
    )
    count = 0
    if format == "jsonl":
        async for row in rows:
            out.write(json.dumps({k: _json_value(v) for k, v in row.items()}, ensure_ascii=False))
            out.write("\n")
            count += 1
    else:
        writer = csv.DictWriter(out, fieldnames=export_fields(include_users=include_users))
        writer.writeheader()
        async for row in rows:
            writer.writerow({k: _csv_value(v) for k, v in row.items()})
            count += 1
    return count
