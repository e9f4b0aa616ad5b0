"""/leaderboard: the chart as a photo and the table as text, from counted duel votes."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.calls import reply_html, telegram_call
from bot.services import services_of
from bot.standings import Standings, compute, load_votes, picture, table
from bot.texts import text
from bot.who import lang_of

log = logging.getLogger(__name__)


async def on_leaderboard(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Reply with the chart (sendPhoto) and the compact table."""
    services = services_of(context)
    message = update.effective_message
    if message is None:
        return
    lang = lang_of(update)

    async def work(session: AsyncSession) -> Standings:
        votes, thumbs = await load_votes(session)
        return Standings(votes, [], thumbs)

    loaded = await services.db.run(work, write=False)
    # The bootstrap refits and the rendering take CPU time: keep the event loop free.
    standings = await asyncio.to_thread(compute, loaded.votes, loaded.thumbs)
    body = table(standings, lang)
    if standings.board or standings.thumbs:
        # The chart is titled in English: its font has no CJK glyphs.
        png = await asyncio.to_thread(picture, standings, text("en", "leaderboard_caption"))
        quote = message.chat.type != "private"
        try:
            await telegram_call(lambda: message.reply_photo(png, do_quote=quote))
        except TelegramError as exc:
            log.warning("could not send the leaderboard chart: %s", exc)
    await reply_html(message, body)
