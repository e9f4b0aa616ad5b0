"""The game timer at scale (issue 24, item 9): 300 open games revealed within 1 s of their
deadlines, countdown edits within Telegram's per-group budget and the replica's share, and
exactly one replica driving each game."""

from __future__ import annotations

import itertools
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repository as repo
from bot.db.models import Game, utcnow
from bot.handlers.game_timer import COUNTDOWN_EDITS_PER_S, COUNTDOWN_EVERY_S, RENEW_EVERY_S, GameTimer
from bot.services import SERVICES_KEY, Services
from tests.bot.storage.factories import make_game
from tests.e2e.conftest import Harness

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


async def _open_games(
    h: Harness, deadlines: list[datetime], driver: str | None, until: datetime | None
) -> dict[int, int]:
    """A group, its game message and an open game per deadline; returns group -> game id."""
    made: dict[int, int] = {}
    for i, deadline in enumerate(deadlines):
        group = h.sb.group(f"Group {i}", [h.sb.user(f"Player {i}")])
        shown = await h.app.bot.send_message(group, "Real or dream?")

        async def create(
            session: AsyncSession,
            group: int = group,
            message_id: int = shown.message_id,
            due: datetime = deadline,
        ) -> int:
            chat = await repo.get_or_create_chat(session, telegram_id=group, type="supergroup", title="g")
            game = await make_game(
                session,
                chat=chat,
                model_name="tiny-char",
                deadline=due,
                telegram_message_id=message_id,
                timer_replica=driver,
                timer_until=until,
            )
            return game.id

        made[group] = await h.db.run(create)
    return made


def _reveals(h: Harness, groups: set[int]) -> list[tuple[int, float]]:
    """(group, monotonic time) of each reveal the bot sent in these groups."""
    return [
        (int(c.params["chat_id"]), c.at)
        for c in h.sb.calls("sendMessage")
        if int(c.params["chat_id"]) in groups and "is the book" in str(c.params.get("text"))
    ]


def _countdowns(h: Harness, groups: set[int]) -> dict[int, list[float]]:
    """Monotonic times of the countdown edits (those that keep the buttons) per group."""
    edits: dict[int, list[float]] = defaultdict(list)
    for c in h.sb.calls("editMessageText"):
        if int(c.params["chat_id"]) in groups and c.params.get("reply_markup"):
            edits[int(c.params["chat_id"])].append(c.at)
    return edits


async def test_with_three_hundred_open_games_each_reveal_comes_soon_after_its_deadline(
    harness: Harness,
) -> None:
    """300 games open at once; 60 of them end over 12 s (5 a second: each reveal is two calls,
    and the bot keeps under Telegram's ~30 a second with the countdowns of the other 240)."""
    h = harness
    far = utcnow() + timedelta(hours=1)
    made = await _open_games(h, [far] * 300, h.settings.replica_id, far)
    ending = dict(list(made.items())[:60])
    # The deadlines are set once every game exists, the first 3 s from now.
    start_utc, start_mono = utcnow(), time.monotonic()
    deadlines = [start_utc + timedelta(seconds=3 + 12 * i / 60) for i in range(60)]

    async def set_deadlines(session: AsyncSession) -> None:
        for game_id, deadline in zip(ending.values(), deadlines, strict=True):
            await session.execute(update(Game).where(Game.id == game_id).values(deadline=deadline))

    await h.db.run(set_deadlines)
    groups = set(ending)
    await h.sb.wait_until(lambda: len(_reveals(h, groups)) >= 60, timeout=60, what="60 reveals")
    due = {
        group: start_mono + (d - start_utc).total_seconds()
        for group, d in zip(ending, deadlines, strict=True)
    }
    late = [at - due[group] for group, at in _reveals(h, groups)]
    assert Counter(group for group, _ in _reveals(h, set(made))) == Counter(groups)  # once each, only those
    # Within 1 s is the target, held by `python -m bench.game_timer` (a timing, not a test's
    # business on a shared machine); here, a bound the old timer missed by far (15.9 s late).
    assert max(late) <= 10.0, f"latest reveal {max(late):.2f} s after its deadline"
    assert min(late) >= 0  # never early


async def _simulated_minute(
    h: Harness, made: dict[int, int], replica: str, seconds: float
) -> dict[int, list[float]]:
    """Tick a timer of `replica` over `seconds` of a simulated clock; its countdown edits."""
    clock = [0.0]
    timer = GameTimer(h.app.bot, h.app.bot_data[SERVICES_KEY], replica=replica, clock=lambda: clock[0])
    for _ in range(int(seconds / 0.5) + 1):
        await timer.tick()
        await timer.settle()
        clock[0] += 0.5
    assert timer.tracked == len(made)
    return _countdowns(h, set(made))


async def test_countdown_edits_keep_to_the_per_group_and_the_replica_budget(harness: Harness) -> None:
    h = harness
    far = utcnow() + timedelta(hours=1)
    # A few games: each is edited every COUNTDOWN_EVERY_S, 12 a minute, under Telegram's ~20.
    few = await _open_games(h, [far] * 3, "few-games", far)
    edits = await _simulated_minute(h, few, "few-games", 60)
    assert [len(times) for times in edits.values()] == [60 / COUNTDOWN_EVERY_S] * 3
    # 300 games: the replica's share caps the edits, and every game still gets its turn.
    many = await _open_games(h, [far] * 300, "many-games", far)
    edits = await _simulated_minute(h, many, "many-games", 70)
    assert sum(len(times) for times in edits.values()) <= COUNTDOWN_EDITS_PER_S * 71
    assert len(edits) == 300 and max(len(times) for times in edits.values()) <= 2


async def test_exactly_one_replica_drives_each_game(harness: Harness) -> None:
    h = harness
    services: Services = h.app.bot_data[SERVICES_KEY]
    start = utcnow()
    deadlines = [start + timedelta(seconds=14 + i / 10) for i in range(40)]
    made = await _open_games(h, deadlines, None, None)  # nobody drives them yet
    groups = set(made)
    second = GameTimer(h.app.bot, services, replica="second-replica")
    second.start()
    try:
        await h.sb.wait_until(lambda: len(_reveals(h, groups)) >= 40, timeout=60, what="40 reveals")
        await second.settle()
    finally:
        await second.stop()

    async def drivers(session: AsyncSession) -> list[str | None]:
        return list(
            (await session.scalars(select(Game.timer_replica).where(Game.id.in_(made.values())))).all()
        )

    assert set(await h.query(drivers)) <= {h.settings.replica_id, "second-replica"}
    assert Counter(g for g, _ in _reveals(h, groups)) == Counter({g: 1 for g in groups})  # one reveal each
    for times in _countdowns(h, groups).values():  # one countdown per game, not one per replica
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # Two drivers would interleave their edits (gaps near 0); one keeps ~5 s, less its jitter.
        assert all(gap >= COUNTDOWN_EVERY_S / 2 for gap in gaps), gaps


async def test_an_idle_timer_reads_the_drivers_only_every_few_seconds_and_wakes_for_a_new_game(
    harness: Harness,
) -> None:
    """No open game of this replica's: a tick reads nothing but the drivers, once every
    RENEW_EVERY_S (the old timer read its games twice a second); a game it starts is counted
    down from the next tick, and one left undriven is taken at the next look."""
    from sqlalchemy import event

    h = harness
    clock = [0.0]
    services: Services = h.app.bot_data[SERVICES_KEY]
    timer = GameTimer(h.app.bot, services, replica="idle-replica", clock=lambda: clock[0])
    selects: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "games" in statement:
            selects.append(statement)

    engine = services.db.engine.sync_engine  # the bot's own
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(int(30 / 0.5)):  # 30 s of ticks with no game
            await timer.tick()
            clock[0] += 0.5
        assert 0 < len(selects) <= 30 / RENEW_EVERY_S + 1, len(selects)
        far = utcnow() + timedelta(hours=1)
        mine = await _open_games(h, [far], "idle-replica", far)  # as /game makes one here
        timer.shown(next(iter(mine.values())))
        selects.clear()
        await timer.tick()
        assert any("timer_replica" in s for s in selects) and timer.tracked == 1, selects
        theirs = await _open_games(h, [far], None, None)  # nobody drives it
        clock[0] += RENEW_EVERY_S
        await timer.tick()
        assert timer.tracked == 2 and set(theirs.values()) <= set(timer._edited)
    finally:
        event.remove(engine, "before_cursor_execute", count)
