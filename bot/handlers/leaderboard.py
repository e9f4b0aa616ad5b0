"""/leaderboard: the chart as a photo and the table as text, from counted duel votes.

The standings come from a shared cache (bot.standings_cache): asking costs a cheap version
read at most, and the fit never runs on the event loop. Each user may ask once every
ASK_EVERY_S seconds; a refused ask is told so at most once in that time, then ignored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, ContextTypes

from bot.calls import reply_html, telegram_call
from bot.challengers import rules, standing
from bot.notices import NoticeThrottle
from bot.promotion import Standing
from bot.services import SERVICES_KEY, Services
from bot.standings import challenger_line, table
from bot.standings_cache import StandingsCache
from bot.texts import text
from bot.who import lang_of

log = logging.getLogger(__name__)

ASK_EVERY_S = 10.0
STATE_KEY = "leaderboard"


@dataclass
class LeaderboardState:
    """The shared standings and the per-user limits on asking for them."""

    cache: StandingsCache
    services: Services
    # NoticeThrottle is a bounded "once per user every N s": one for asks, one for refusals.
    asks: NoticeThrottle = field(default_factory=lambda: NoticeThrottle(ASK_EVERY_S))
    refusals: NoticeThrottle = field(default_factory=lambda: NoticeThrottle(ASK_EVERY_S))


def leaderboard_state(application: Application) -> LeaderboardState:  # type: ignore[type-arg]
    """This process's leaderboard state, made on first use."""
    state = application.bot_data.get(STATE_KEY)
    if not isinstance(state, LeaderboardState):
        services: Services = application.bot_data[SERVICES_KEY]
        # The chart is titled in English: its font has no CJK glyphs.
        state = LeaderboardState(StandingsCache(services.db, text("en", "leaderboard_caption")), services)
        application.bot_data[STATE_KEY] = state
    return state


async def on_leaderboard(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Reply with the chart (sendPhoto) and the compact table, or say why not now."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return
    lang = lang_of(update)
    state = leaderboard_state(context.application)
    if not state.asks.allow(user.id):
        if state.refusals.allow(user.id):
            await reply_html(message, text(lang, "leaderboard_wait", seconds=round(ASK_EVERY_S)))
        return
    shown = await state.cache.get()
    if shown.chart is not None:
        quote = message.chat.type != "private"
        chart = shown.chart
        try:
            await telegram_call(lambda: message.reply_photo(chart, do_quote=quote))
        except TelegramError as exc:
            log.warning("could not send the leaderboard chart: %s", exc)
    lines = [table(shown.standings, lang), *await challenger_lines(state.services, lang)]
    await reply_html(message, "\n\n".join(lines))


async def challenger_lines(services: Services, lang: str) -> list[str]:
    """Where each current challenger stands in its blind duels (one line per model)."""
    names = [info.name for info in services.generation.models()]

    async def work(session: AsyncSession) -> list[tuple[str, str, Standing]]:
        found = []
        for name in names:
            current = await standing(session, services, name)
            if current is not None:
                challenger, where = current
                found.append((name, challenger.version, where))
        return found

    alpha = rules(services).alpha
    return [
        challenger_line(lang, name, version, where, alpha)
        for name, version, where in await services.db.run(work, write=False)
    ]
