"""Inline mode: "@bot <seed>" in any chat offers three continuations; the chosen one is stored.

Each query is answered with the user's temperature, a lower and a higher one, generated in one
batch and cached briefly per (user, seed) so that typing on does not regenerate. The offer (all
three candidates) is stored before answering; the `chosen_inline_result` update (BotFather:
/setinlinefeedback) turns the chosen one into a sample with its inline_message_id, and the
offer records which was chosen over the others: a preference an export can use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineQueryResultArticle, InputTextMessageContent, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.admission import Ticket, admit
from bot.calls import PARSE_MODE, telegram_call
from bot.db import repository as repo
from bot.finishing import asked, finish, keep_whole, shown_length
from bot.message_text import storable
from bot.parsing import format_temperature
from bot.render import excerpt, sample_html, unit_of
from bot.services import Services, services_of
from bot.texts import text
from core.generator import Request
from core.limits import INLINE_LENGTH, capped_length

log = logging.getLogger(__name__)

ANSWER_WITHIN_S = 8.0  # Telegram drops answers after ~10 s
CACHE_S = 60.0
CACHE_MAX = 1000
_RESULT = re.compile(r"^o(\d+):(\d)$")


@dataclass(frozen=True)
class _Offer:
    offer_id: int
    results: list[InlineQueryResultArticle]
    at: float


_CACHE_KEY = "inline_cache"


def temperatures(t: float) -> list[float]:
    """The user's temperature, a lower and a higher one (within 0..2)."""
    lower = round(t - 0.3, 2) if t >= 0.3 else round(t / 2, 2)
    higher = round(min(2.0, t + 0.5), 2)
    return [lower, round(t, 2), higher]


def _cache(context: ContextTypes.DEFAULT_TYPE) -> dict[tuple[int, str], _Offer]:
    cache: dict[tuple[int, str], _Offer] = context.application.bot_data.setdefault(_CACHE_KEY, {})
    return cache


async def on_inline_query(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Three continuations of the typed seed, or nothing (empty seed, rate limit, busy)."""
    query = update.inline_query
    if query is None:
        return
    services = services_of(context)
    seed = storable(query.query).strip()
    key = (query.from_user.id, seed)
    cache = _cache(context)
    cached = cache.get(key)
    if cached is not None and time.monotonic() - cached.at < CACHE_S:
        await _answer_query(query.answer, cached.results)
        return
    if not seed:
        await _answer_query(query.answer, [])
        return
    offer = None
    async with admit(services, context.bot, update, cost=3) as ticket:
        ticket.told = True  # an inline query has no chat to say a refusal in: no results say it
        if ticket.granted:
            with contextlib.suppress(TimeoutError):
                offer = await asyncio.wait_for(_offer(services, update, ticket, seed), ANSWER_WITHIN_S)
    if offer is None:
        await _answer_query(query.answer, [])
        return
    if len(cache) >= CACHE_MAX:
        cache.clear()
    cache[key] = offer
    await _answer_query(query.answer, offer.results)


async def _answer_query(answer: object, results: list[InlineQueryResultArticle]) -> None:
    try:
        # Personal: the results follow this user's settings. Short cache: the bot caches too.
        await telegram_call(lambda: answer(results, cache_time=10, is_personal=True), idempotent=True)  # type: ignore[operator]
    except TelegramError as exc:
        log.info("inline answer failed: %s", exc)


async def _offer(services: Services, update: Update, ticket: Ticket, seed: str) -> _Offer | None:
    """Generate the three candidates in one batch, finish them, and store them as an offer."""
    asker = await ticket.who()
    length = capped_length(asker.length, asker.level, INLINE_LENGTH)
    temps = temperatures(asker.temperature)
    rngs = [secrets.randbits(63) for _ in temps]
    requests = [
        (Request(seed, length=asked(length, asker.level), temperature=t, rng=r), asker.model)
        for t, r in zip(temps, rngs, strict=True)
    ]
    made = await ticket.generate(requests, typing=False)
    if made is None:
        return None
    finished = [finish(sample, length, asker.level) for sample in made]
    whole = await keep_whole(ticket, requests, finished, length, [asker.level] * len(requests))
    if whole is None:
        return None
    samples = [kept.sample for kept in whole]
    candidates = [
        {
            "temperature": t,
            "text": k.sample.text,
            "rng_seed": k.rng,
            "length": length,
            "shown": shown_length(k.sample, asker.level),
        }
        for t, k in zip(temps, whole, strict=True)
    ]

    async def store(session: AsyncSession) -> int:
        return await repo.create_inline_offer(
            session,
            user_id=asker.user_id,
            seed=seed,
            model_name=asker.model,
            model_version=samples[0].model_version or asker.model_version,  # the version that drew them
            candidates=candidates,
        )

    offer_id = await services.db.run(store)
    _, unit = unit_of(services.generation, asker.model, asker.lang)
    results = [
        InlineQueryResultArticle(
            id=f"o{offer_id}:{i}",
            title=text(asker.lang, "inline_title", temperature=format_temperature(t)),
            description=excerpt(s.text, 120),
            input_message_content=InputTextMessageContent(
                sample_html(
                    verse=asker.verse,
                    seed=seed,
                    continuation=s.text,
                    model=asker.model,
                    temperature=t,
                    length=shown_length(s, asker.level),
                    unit=unit,
                    lang=asker.lang,
                ),
                parse_mode=PARSE_MODE,
            ),
        )
        for i, (t, s) in enumerate(zip(temps, samples, strict=True))
    ]
    return _Offer(offer_id, results, time.monotonic())


async def on_chosen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The user sent one of the offered continuations: store it as a sample and the preference."""
    chosen = update.chosen_inline_result
    if chosen is None:
        return
    match = _RESULT.match(chosen.result_id)
    if match is None:
        return
    offer_id, index = int(match[1]), int(match[2])
    services = services_of(context)
    tg_user = chosen.from_user

    async def work(session: AsyncSession) -> int | None:
        if not await repo.claim_update(session, update_id=update.update_id):
            return None  # a redelivered update: its sample was stored the first time
        user = await repo.get_user(session, telegram_id=tg_user.id)
        if user is None:
            return None
        offer = await repo.take_inline_offer(session, offer_id=offer_id, user_id=user.id)
        if offer is None:
            return None  # not this user's offer
        if not 0 <= index < len(offer.candidates):
            return None
        picked = offer.candidates[index]
        # Inline messages belong to no chat the bot can see: the sample is filed under the
        # user's private chat with the bot.
        chat = await repo.get_or_create_chat(session, telegram_id=tg_user.id, type="private", title=None)
        novelty = None
        if offer.model_name in services.generation.generators:
            tokenizer = services.generation.generators[offer.model_name].bundle.tokenizer
            novelty = services.novelty.check(offer.model_name, tokenizer.encode(str(picked["text"])))
        sample_id = await repo.record_sample(
            session,
            user_id=user.id,
            chat_id=chat.id,
            seed=offer.seed,
            model_name=offer.model_name,
            model_version=offer.model_version,
            temperature=float(picked["temperature"]),
            length=int(picked["length"]),
            # offers made before "shown" was kept stored the shown count as their length
            shown_length=int(picked.get("shown", picked["length"])),
            text=str(picked["text"]),
            generation_ms=0,
            rng_seed=int(picked["rng_seed"]),
            delivered=True,
            inline_message_id=chosen.inline_message_id,
            novelty=novelty,
        )
        if offer.chosen is None:  # the preference is the first pick; a second send is a sample only
            offer.chosen, offer.sample_id = index, sample_id
        return sample_id

    sample_id = await services.db.run(work)
    if sample_id is not None:
        services.counters.samples += 1
