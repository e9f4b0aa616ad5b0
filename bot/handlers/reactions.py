"""Message reactions on a sample count as ratings (the mapping is in bot/reactions.py).

A user's reaction is their rating, the same one their 👍/👎 buttons set: it goes through the
buttons' repository call and redraws the sample's counts the way a rating from a /rate copy
does. Anonymous reactions (a channel's) only update the sample's anonymous counts.

Only a message showing exactly one sample counts: a /compare message shows four (one reaction
cannot say which), and a /rate copy is not the sample's own message. Anything else is ignored
silently: reactions have no answer to give, so a refusal is only logged.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Chat, Update
from telegram.ext import ContextTypes

from bot.db import repository as repo
from bot.handlers.presses import in_anothers_private_chat, owner_rates_own_chat
from bot.handlers.ratings import refresh_sample_message
from bot.reactions import change_of, tally
from bot.services import services_of
from bot.who import Seen, store_user_and_chat

log = logging.getLogger(__name__)


async def _sample_of_message(
    session: AsyncSession, chat_id: int, message_id: int
) -> repo.SampleOrigin | None:
    """The one sample a message shows, with its chat's and author's ids; None for any other
    message (no sample, or a /compare's four)."""
    shown = await repo.samples_of_message(session, chat_telegram_id=chat_id, message_id=message_id)
    if len(shown) != 1:
        return None
    return await repo.get_sample_origin(session, sample_id=shown[0][0].id)


async def on_reaction(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A user's reactions on a message changed: when they are on a sample, rate it."""
    reacted = update.message_reaction
    if reacted is None or reacted.user is None:
        return  # an anonymous admin reacting as the chat: no user to rate as
    change = change_of(reacted.old_reaction, reacted.new_reaction)
    if change is None:
        return  # only reactions outside the mapping came or went
    services = services_of(context)
    chat, tg_user = reacted.chat, reacted.user
    private = chat.type == Chat.PRIVATE

    if in_anothers_private_chat(chat.id, private, tg_user.id):
        log.info("a reaction in a private chat by someone other than its user: ignored")
        return

    async def work(session: AsyncSession) -> repo.RatingState | None:
        found = await _sample_of_message(session, chat.id, reacted.message_id)
        if found is None:
            return None
        if not owner_rates_own_chat(found, chat_id=chat.id, private=private, rater=tg_user.id):
            log.info("a reaction on sample %s by someone other than its author: ignored", found.sample.id)
            return None
        # A redelivered update must not apply twice (a removal after a later button press would).
        if not await repo.claim_update(session, update_id=update.update_id):
            return None
        user, _ = await store_user_and_chat(session, Seen.of(tg_user, None))
        return await repo.rate_by_reaction(
            session, sample_id=found.sample.id, user_id=user.id, score=change.score, added=change.added
        )

    state = await services.db.run(work)
    if state is None or not state.changed:
        return
    services.counters.ratings += 1
    await refresh_sample_message(context.bot, services, chat.id, reacted.message_id)


async def on_reaction_count(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Anonymous reactions on a message were counted: keep a sample's likes and dislikes."""
    counted = update.message_reaction_count
    if counted is None:
        return
    likes, dislikes = tally(counted.reactions)
    services = services_of(context)

    async def work(session: AsyncSession) -> None:
        found = await _sample_of_message(session, counted.chat.id, counted.message_id)
        if found is not None:
            await repo.set_anonymous_reactions(
                session, sample_id=found.sample.id, likes=likes, dislikes=dislikes, counted_at=counted.date
            )

    await services.db.run(work)
