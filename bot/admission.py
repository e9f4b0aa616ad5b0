"""Admission: whether an update may generate now, and the work it is then charged for.

Every feature that generates (a seed, /gen, 🔁, /compare, /duel, /game, inline) asks here
first, in one shape:

    async with admit(services, update, cost=2, reply_to=message) as ticket:
        if not ticket.granted:
            return
        samples = await ticket.generate([(request_a, model_a), (request_b, model_b)])

An update that was answered before (Telegram redelivers after a crash or a slow webhook) is no
new request: its undelivered samples are sent now and nothing is generated. A user's requests
are admitted one at a time in the order they came; a refusal (one at a time, too fast, queue
full) costs nothing and is said at most once every few seconds (not in the chat when the
caller said it already: a press says it in its toast, then sets `told`). The user's slot is
held until the block ends, and exactly the generations made are charged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from telegram import Bot, Message, Update
from telegram.constants import ChatAction
from telegram.error import TelegramError

from bot.calls import reply_html
from bot.db import repository as repo
from bot.db.models import utcnow
from bot.delivery import deliver_pending
from bot.generation import QueueFullError, ServiceClosedError
from bot.services import Services
from bot.texts import language_of, text
from bot.who import Who, known_who, lang_of, seen_in, who
from core.generator import Request, Sample

log = logging.getLogger(__name__)

TYPING_AFTER_S = 0.3  # show "typing..." only when a reply takes longer than this
TYPING_MAX_OUTSTANDING = 10  # ... and while at most this many requests are being served


@dataclass
class Ticket:
    """The answer to one update's request to generate."""

    services: Services
    bot: Bot
    user_id: int  # Telegram's user id (the limits' key)
    lang: str
    chat_id: int | None  # Telegram's chat id, for "typing..." (None: inline, no chat)
    granted: bool
    refusal: str | None = None  # why not (None when granted, or for an update answered before)
    duplicate: bool = False  # answered before: its undelivered samples were sent again
    told: bool = False  # the refusal was said already (a press's toast)
    queue_refused: bool = False  # the queue said no after admission: always said (not throttled)
    charged: int = field(default=0)
    update: Update | None = None  # the update admitted (its asker is read once, with admission)
    asker: Who | None = None  # read with admission's redelivery check (None: not yet, or newcomer)
    looked: repo.AskerRows | None = None  # that read's rows, when they need a write (next step)

    async def who(self) -> Who:
        """Who is asking and with which settings: as read at admission, else stored now (a
        newcomer, or a changed name, language or title)."""
        if self.asker is None:
            assert self.update is not None
            self.asker = await who(self.services, self.update, looked=self.looked)
        return self.asker

    async def generate(
        self,
        requests: Sequence[tuple[Request, str]],
        *,
        typing: bool = True,
        versions: Sequence[str | None] | None = None,
    ) -> list[Sample] | None:
        """Run (request, model) pairs through the shared queue, charging each one made; with
        `versions`, each by that loaded version of its model (a challenger duel).

        None when the queue refused them (the refusal is then in `self.refusal`)."""
        if not self.granted:
            raise RuntimeError("generate() on a refused ticket")
        generation = self.services.generation
        chosen = list(versions) if versions is not None else [None] * len(requests)
        task = asyncio.ensure_future(
            asyncio.gather(
                *(
                    generation.generate(request, model=model, version=version)
                    for (request, model), version in zip(requests, chosen, strict=True)
                )
            )
        )
        try:
            if typing and self.chat_id is not None:
                done, _ = await asyncio.wait({task}, timeout=TYPING_AFTER_S)
                # Every Bot API call counts against Telegram's ~30 messages a second: in a burst
                # the budget goes to the replies themselves (200 at once: 13 s -> 7 s).
                if not done and generation.outstanding <= TYPING_MAX_OUTSTANDING:
                    await self._typing()
            samples = list(await task)
        except QueueFullError:
            self.refusal, self.queue_refused = text(self.lang, "busy"), True
            return None
        except ServiceClosedError:
            self.refusal, self.queue_refused = text(self.lang, "restarting"), True
            return None
        await self.services.limits.charge(self.user_id, len(samples))  # work done, not asked
        self.charged += len(samples)
        return samples

    async def _typing(self) -> None:
        assert self.chat_id is not None
        try:
            await self.bot.send_chat_action(self.chat_id, ChatAction.TYPING)
        except TelegramError as exc:  # best effort: it must not stop the reply
            log.debug("typing action failed: %s", exc)


async def refusal_of(
    services: Services, user_id: int, lang: str, cost: int, request: int | None
) -> str | None:
    """Why the per-user limits refuse `cost` generations now (None: they don't). `request`: the
    update id the slot would be taken for (its own redelivery is not "busy")."""
    if await services.limits.busy(user_id, request):
        return text(lang, "one_at_a_time")
    wait = await services.limits.retry_after(user_id, cost)
    if wait:
        return text(lang, "rate_limited", limit=services.limits.per_minute, seconds=wait)
    return None


@dataclass(frozen=True)
class FirstLook:
    """What admission reads first (one statement for a known user): whether the update was
    answered before (and its samples not yet delivered), else who is asking when they are
    known and unchanged."""

    seen: bool
    pending: list[repo.Pending]
    asker: Who | None
    rows: repo.AskerRows | None = None  # what the asker's read found (None: not read)


async def first_look(services: Services, update: Update, *, asker: bool = True) -> FirstLook:
    """Read the update's outcome, if it has one, else (with `asker`) its asker (see FirstLook)."""
    db = services.db
    if not asker:
        handled = await db.run_trip(partial(repo.handled, update_id=update.update_id), write=False)
        return await _answered(services, update) if handled else FirstLook(False, [], None)
    # One statement for a known user: the update's claim, the user and chat rows.
    seen = seen_in(update)
    rows = await db.run_trip(partial(seen.read, update_id=update.update_id), write=False)
    if rows.handled:
        return await _answered(services, update)
    return FirstLook(False, [], known_who(services.generation, seen, rows, lang_of(update)), rows)


async def _answered(services: Services, update: Update) -> FirstLook:
    """The look at an update answered before: its samples not yet delivered."""
    pending = partial(repo.pending_samples_of_update, update_id=update.update_id)
    return FirstLook(True, await services.db.run(pending, write=False, snapshot=False), None)


async def answered_before(services: Services, bot: Bot, update: Update, reply_to: Message | None) -> bool:
    """Whether this update's outcome was stored already (a redelivery); if so, its samples
    that never reached the chat are sent now (as old as the outbox takes), nothing else."""
    seen = await first_look(services, update, asker=False)
    return await _resend_if_seen(services, bot, update, reply_to, seen)


async def _resend_if_seen(
    services: Services, bot: Bot, update: Update, reply_to: Message | None, look: FirstLook
) -> bool:
    if not look.seen:
        return False
    oldest = utcnow() - timedelta(seconds=services.settings.outbox_max_age_s)
    fresh = [item for item in look.pending if item.sample.created_at > oldest]
    quote = reply_to.message_id if reply_to is not None and reply_to.chat.type != "private" else None
    sent = await deliver_pending(bot, services, fresh, reply_to=quote)
    log.info(
        "update %s was answered before; not generating again, %d undelivered sent now", update.update_id, sent
    )
    return True


@asynccontextmanager
async def admit(
    services: Services,
    bot: Bot,
    update: Update,
    *,
    cost: int = 1,
    reply_to: Message | None = None,
    answer: Callable[[str], Awaitable[None]] | None = None,
) -> AsyncIterator[Ticket]:
    """Admit one update's request of `cost` generations (see the module's docstring).

    `answer`: a button press's answer, called as soon as admission decided (the refusal in its
    toast, which is then not said again in the chat)."""
    tg_user = update.effective_user
    if tg_user is None:
        raise ValueError("an update without a user cannot be admitted")
    user_id, lang = tg_user.id, language_of(tg_user.language_code)
    chat = update.effective_chat
    ticket = Ticket(services, bot, user_id, lang, chat.id if chat else None, granted=False, update=update)
    reply_to = reply_to or update.effective_message
    async with services.admission.turn(user_id):
        # Recognised before the limits are consulted, so a redelivery never holds the slot: the
        # user's next message could otherwise be refused "one at a time" and lost (issue 17).
        look = await first_look(services, update)
        ticket.asker = look.asker
        ticket.looked = look.rows if not look.seen and look.asker is None else None
        if await _resend_if_seen(services, bot, update, reply_to, look):
            await services.limits.release(user_id, update.update_id)  # its first handler may have died
            ticket.duplicate = True
        else:
            ticket.refusal = await refusal_of(services, user_id, lang, cost, update.update_id)
            if ticket.refusal is None and not await services.limits.begin(user_id, update.update_id):
                ticket.refusal = text(lang, "one_at_a_time")  # another replica was quicker
            ticket.granted = ticket.refusal is None
    if answer is not None:
        await answer(ticket.refusal or "")
        ticket.told = ticket.refusal is not None
    try:
        yield ticket
    finally:
        if ticket.granted:
            await services.limits.end(user_id)
        # A limit's refusal is said at most once every few seconds (a flood must not flood the
        # chat back); the queue's, which the user could not foresee, every time.
        if ticket.refusal and not ticket.told and (ticket.queue_refused or services.notices.allow(user_id)):
            await reply_html(reply_to, ticket.refusal)
