"""Seeds in, samples out: private text, /gen, group mentions and replies, 🔁, /compare.

Each feature is a short composition of the spine: `who` (settings), `admit` (limits, queue,
charging, one outcome per update), `finish` (the ending), `store_samples` (stored before
sent), `send` (the outbox's delivery).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, MessageEntity, Update
from telegram.ext import ContextTypes

from bot import keyboards as kb
from bot.admission import Ticket, admit, answered_before
from bot.calls import reply_html
from bot.db import repository as repo
from bot.delivery import Owner, ToStore, outgoing, send, store_samples
from bot.finishing import Kept, asked, finish, keep_whole, shown_length
from bot.handlers.acrostic import write_acrostic
from bot.handlers.presses import Press, sample_press_allowed
from bot.message_text import command_argument, storable, without_entity
from bot.novelty_badge import badge, draw_novel
from bot.parsing import effective_length, format_temperature
from bot.render import escape, excerpt, sample_html, shown_seed, unit_of
from bot.services import Services, services_of
from bot.texts import text
from bot.who import Who, lang_of
from core.acrostic import Acrostic
from core.generator import Request, Sample
from core.limits import COMPARE_LENGTH, TEMPERATURE_PRESETS, capped_length


@dataclass(frozen=True)
class Source:
    """A stored sample a new one reuses (🔁): its seed, settings and whose text the seed is."""

    seed: str
    model: str
    temperature: float
    length: int
    seed_user_id: int


def other_script(seed: str, model_language: str) -> bool:
    """Whether a seed is written in the other script than the model's: Chinese characters to an
    English model, or Latin letters (and no Chinese) to a Chinese one."""
    has_cjk = any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in seed)
    if model_language == "zh":
        return not has_cjk and any(ch.isascii() and ch.isalpha() for ch in seed)
    return has_cjk


def _other_model(asker: Who, models: list[tuple[str, str]]) -> str | None:
    """A loaded model in the other language, to offer when the seed is written in it."""
    return next((name for name, language in models if language != asker.language), None)


def _notes(sample: Sample, lang: str, *, picked: bool, language: str, advise: bool) -> list[str]:
    """The notes under a sample: a seed picked from the book, a seed in the other script than
    the model's (`advise`: see continue_seed), a seed mostly unknown or cut."""
    notes = [text(lang, "random_seed")] if picked else []
    if advise:
        notes.append(
            text(lang, "other_script", language=text(lang, f"lang_{'zh' if language == 'zh' else 'en'}"))
        )
    if sample.seed_tokens and sample.unknown * 2 > sample.seed_tokens:
        notes.append(text(lang, "mostly_unknown", unknown=sample.unknown, total=sample.seed_tokens))
    elif sample.context_tokens < sample.seed_tokens:
        notes.append(text(lang, "seed_too_long"))
    return notes


async def continue_seed(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    seed: str,
    *,
    reply_to: Message | None = None,
    source: Source | None = None,
    press: Press | None = None,
) -> None:
    """The whole flow for one seed: admit, settings, generate, finish, store, send.

    `source`: a stored sample whose seed and settings are reused (🔁); `press`: the button
    that asked, answered as soon as admission decided (its refusal in the toast)."""
    services = services_of(context)
    reply_to = reply_to or update.effective_message
    seed = storable(seed)
    answer = press.answer if press is not None else None
    async with admit(services, context.bot, update, reply_to=reply_to, answer=answer) as ticket:
        if not ticket.granted:
            return
        asker = await ticket.who()
        if source is not None:
            model = services.generation.resolve(source.model)
            info = services.generation.info(model)
            asker = replace(
                asker,
                model=model,
                model_version=info.version,
                level=info.level,
                language=info.language,
                temperature=source.temperature,
                length=effective_length(source.length, info.level),
            )
        picked = not seed.strip()
        if picked:
            seed = await services.generation.random_seed_text(asker.model)
        made = await _draw(services, ticket, asker, seed)
        if made is None:
            return
        sample, drawn_again = made
        if asker.chat_id is None:
            return
        owner = Owner(
            asker.user_id,
            asker.chat_id,
            asker.model,
            asker.model_version,
            source.seed_user_id if source and source.seed_user_id != asker.user_id else None,
            level=asker.level,
        )
        ids = await store_samples(services, owner, [sample], update.update_id)
    if not ids:  # another replica answered this update meanwhile
        await answered_before(services, context.bot, update, reply_to)
        return
    # Advice on the seed's script is for whoever chose seed and model, with the first draw: 🔁
    # repeats someone's sample with its own model, whatever the presser's model is.
    advise = not picked and source is None and other_script(seed, asker.language)
    out = None
    try:
        _, unit = unit_of(services.generation, asker.model, asker.lang)
        body = sample_html(
            verse=asker.verse,
            seed=seed,
            continuation=sample.sample.text,
            model=asker.model,
            temperature=asker.temperature,
            length=shown_length(sample.sample, asker.level),
            unit=unit,
            lang=asker.lang,
            notes=_notes(sample.sample, asker.lang, picked=picked, language=asker.language, advise=advise)
            + drawn_again,
            badge=badge(sample.novelty, asker.level, asker.lang),
        )
        markup = kb.rating_keyboard(ids[0], 0, 0, asker.lang, shared=False)
        models = [(info.name, info.language) for info in services.generation.models()]
        switch = _other_model(asker, models) if advise else None
        if switch is not None and asker.chosen_model != switch:
            button = InlineKeyboardButton(
                text(asker.lang, "switch_model", model=switch), callback_data=f"m:{switch}"
            )
            markup = InlineKeyboardMarkup([*markup.inline_keyboard, [button]])
        out = outgoing(reply_to, ids, body, markup)
    finally:
        await send(context.bot, services, ids, out)


async def _draw(
    services: Services, ticket: Ticket, asker: Who, seed: str
) -> tuple[ToStore, list[str]] | None:
    """One finished, whole sample (drawn again under MAX_COPIED), and a note when every draw
    copied."""
    rng_seed = secrets.randbits(63)
    request = Request(
        seed, length=asked(asker.length, asker.level), temperature=asker.temperature, rng=rng_seed
    )

    async def draw(rng: int, *, typing: bool) -> Kept | None:
        """The request drawn with `rng`, finished, and drawn again while not whole (a novelty
        redraw too): the rng kept is the one that drew the text."""
        drawn = [(replace(request, rng=rng), asker.model)]
        made = await ticket.generate(drawn, typing=typing)
        if made is None:
            return None
        whole = await keep_whole(
            ticket, drawn, [finish(made[0], asker.length, asker.level)], asker.length, [asker.level]
        )
        return whole[0] if whole is not None else None

    async def draw_again(rng: int) -> Kept | None:
        return await draw(rng, typing=False)

    first = await draw(rng_seed, typing=True)
    if first is None:
        return None
    drawn = await draw_novel(
        services.novelty, asker.model, services.settings.max_copied, first.sample, first.rng, draw_again
    )
    note = [text(asker.lang, "copied_every_draw", draws=drawn.draws)] if drawn.every_draw_copied else []
    return ToStore(drawn.sample, drawn.rng_seed, drawn.novelty), note


# -- entry points ------------------------------------------------------------------------------


async def on_private_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any text in a private chat is a seed."""
    if update.effective_message and update.effective_message.text:
        await continue_seed(update, context, update.effective_message.text)


async def on_gen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/gen <seed> (alias /generate); an empty one picks a seed from the model's corpus."""
    if update.effective_message:
        await continue_seed(update, context, command_argument(update.effective_message))


async def on_group_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """In groups: replies to the bot's messages and messages mentioning it; other chatter is ignored."""
    message = update.effective_message
    if message is None or not message.text:
        return
    me = context.bot
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == me.id:
        await continue_seed(update, context, message.text)
        return
    mention = f"@{me.username}".lower() if me.username else None
    for entity, value in message.parse_entities([MessageEntity.MENTION]).items():
        if mention and value.lower() == mention:
            await continue_seed(update, context, without_entity(message.text, entity))
            return


async def on_non_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, photos and the like in a private chat get a short hint."""
    await reply_html(update.effective_message, text(lang_of(update), "non_text"))


async def on_again_press(press: Press) -> None:
    """🔁 under a sample: the same seed and settings, a new draw, sent as a new message (one per
    press: a redelivered press is answered by the sample its first delivery stored)."""
    action = press.action
    assert isinstance(action, kb.Again)

    async def work(session: AsyncSession) -> repo.SampleOrigin | None:
        return await repo.get_sample_origin(session, sample_id=action.sample_id)

    found = await press.services.db.run(work, write=False)
    if found is None:
        await press.answer(text(press.lang, "sample_gone"))
        return
    if not sample_press_allowed(press, found) or press.update.effective_chat is None:
        await press.refuse()  # no chat to send a new sample to (an inline message)
        return
    stored = found.sample
    if stored.acrostic:  # its seed is a newline: the acrostic itself is drawn again
        poem = Acrostic.from_spec(stored.acrostic)
        await write_acrostic(
            press.update,
            press.context,
            poem,
            reply_to=press.message,
            temperature=stored.temperature,
            press=press,
        )
        return
    source = Source(
        stored.seed,
        stored.model_name,
        stored.temperature,
        stored.length,
        stored.seed_user_id if stored.seed_user_id is not None else stored.user_id,
    )
    await continue_seed(
        press.update, press.context, stored.seed, reply_to=press.message, source=source, press=press
    )


async def on_compare(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/compare <seed>: the book's loop in one message, each part ratable."""
    services = services_of(context)
    message = update.effective_message
    if message is None or update.effective_user is None:
        return
    seed = storable(command_argument(message))
    async with admit(
        services, context.bot, update, cost=len(TEMPERATURE_PRESETS), reply_to=message
    ) as ticket:
        if not ticket.granted:
            return
        asker = await ticket.who()
        if not seed:
            seed = await services.generation.random_seed_text(asker.model)
        length = capped_length(asker.length, asker.level, COMPARE_LENGTH)
        seeds = [secrets.randbits(63) for _ in TEMPERATURE_PRESETS]
        requests = [
            (Request(seed, length=asked(length, asker.level), temperature=t, rng=r), asker.model)
            for t, r in zip(TEMPERATURE_PRESETS, seeds, strict=True)
        ]
        generated = await ticket.generate(requests)
        if generated is None or asker.chat_id is None:
            return
        finished = [finish(s, length, asker.level) for s in generated]
        whole = await keep_whole(ticket, requests, finished, length, [asker.level] * len(requests))
        if whole is None:
            return
        samples = [kept.sample for kept in whole]
        novelties = [services.novelty.check(asker.model, s.token_ids) for s in samples]
        parts = [ToStore(k.sample, k.rng, n) for k, n in zip(whole, novelties, strict=True)]
        # Every part carries the update id: a redelivered update finds all four.
        owner = Owner(asker.user_id, asker.chat_id, asker.model, asker.model_version, level=asker.level)
        ids = await store_samples(services, owner, parts, update.update_id)
    if not ids:  # another replica answered this update meanwhile
        await answered_before(services, context.bot, update, message)
        return
    out = None
    try:
        badges = [badge(novelty, asker.level, asker.lang) for novelty in novelties]
        body = _compare_html(seed, samples, asker.lang, badges)
        markup = kb.compare_keyboard([(t, i, 0, 0) for t, i in zip(TEMPERATURE_PRESETS, ids, strict=True)])
        out = outgoing(message, ids, body, markup)
    finally:
        await send(context.bot, services, ids, out)


def _compare_html(seed: str, samples: list[Sample], lang: str, badges: list[str | None]) -> str:
    shown = escape(excerpt(shown_seed(seed), 120))
    parts = [text(lang, "compare_title", seed=shown)]
    for temperature, sample, mark in zip(TEMPERATURE_PRESETS, samples, badges, strict=True):
        parts.append(
            text(
                lang,
                "compare_part",
                temperature=format_temperature(temperature),
                seed=shown,
                text=escape(sample.text),
            )
            + (f"\n<i>{escape(mark)}</i>" if mark else "")
        )
    return "\n\n".join(parts)
