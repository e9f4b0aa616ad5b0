"""/acrostic 新年快乐 [5|7]: a poem whose lines start with the given characters (藏头诗).

A composition of the spine like every feature: `who` (settings), `admit` (limits, queue, one
outcome per update), the generation with its constrained schedule (core/acrostic.py: the form
is exact, so nothing to finish), `store_samples` (the heads and line length stored with the
sample, so 🔁 and a resend rebuild it), `send`. It needs a poem model (trained on
corpora/tang): the user's own model when it is one, else the first one loaded. Acrostics stay
out of duels and the game: their forced form would decide a comparison by itself.
"""

from __future__ import annotations

import secrets

from telegram import Message, Update
from telegram.ext import ContextTypes

from bot import keyboards as kb
from bot.admission import admit, answered_before
from bot.calls import reply_html
from bot.delivery import Owner, ToStore, outgoing, send, store_samples
from bot.handlers.presses import Press
from bot.message_text import command_argument
from bot.parsing import parse_acrostic
from bot.render import acrostic_html, escape
from bot.services import Services, services_of
from bot.texts import text
from bot.who import Who, who
from core.acrostic import Acrostic, AcrosticError, acrostic_request, writes_poems


def poem_model(services: Services, asker: Who) -> str | None:
    """The model that writes the poem: the asker's when it writes poems, else the first loaded."""
    generation = services.generation
    poets = [
        info.name for info in generation.models() if writes_poems(generation.generator(info.name).bundle)
    ]
    return asker.model if asker.model in poets else next(iter(poets), None)


async def on_acrostic(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/acrostic <heads> [5|7]."""
    message = update.effective_message
    if message is None or update.effective_user is None:
        return
    parsed = parse_acrostic(command_argument(message))
    if parsed is None:
        asker_lang = (await who(services_of(context), update)).lang
        await reply_html(message, text(asker_lang, "acrostic_usage"))
        return
    await write_acrostic(update, context, Acrostic(*parsed), reply_to=message)


async def write_acrostic(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    acrostic: Acrostic,
    *,
    reply_to: Message | None,
    temperature: float | None = None,
    press: Press | None = None,
) -> None:
    """The whole flow for one acrostic; `temperature` and `press` when 🔁 redraws a stored one."""
    services = services_of(context)
    answer = press.answer if press is not None else None
    async with admit(services, context.bot, update, reply_to=reply_to, answer=answer) as ticket:
        if not ticket.granted:
            return
        asker = await ticket.who()
        model = poem_model(services, asker)
        if model is None:
            await reply_html(reply_to, text(asker.lang, "acrostic_no_model"))
            return
        tokenizer = services.generation.generator(model).tokenizer
        temperature = asker.temperature if temperature is None else temperature
        rng_seed = secrets.randbits(63)
        try:
            request = acrostic_request(tokenizer, acrostic, temperature=temperature, rng=rng_seed)
        except AcrosticError as exc:  # heads it does not know (or a model without 「，」「。」)
            said = text(asker.lang, "acrostic_missing", missing=escape(exc.missing)) if exc.missing else None
            await reply_html(reply_to, said or text(asker.lang, "acrostic_no_model"))
            return
        made = await ticket.generate([(request, model)])
        if made is None or asker.chat_id is None:
            return
        poem = made[0]
        novelty = services.novelty.check(model, poem.token_ids)
        info = services.generation.info(model)
        owner = Owner(asker.user_id, asker.chat_id, model, info.version, level=info.level)
        part = ToStore(poem, rng_seed, novelty, acrostic=acrostic.spec)
        ids = await store_samples(services, owner, [part], update.update_id)
    if not ids:  # another replica answered this update meanwhile
        await answered_before(services, context.bot, update, reply_to)
        return
    out = None
    try:
        body = acrostic_html(poem.text, acrostic, model=model, temperature=temperature, lang=asker.lang)
        markup = kb.rating_keyboard(ids[0], 0, 0, asker.lang, shared=False, duel=False)
        out = outgoing(reply_to, ids, body, markup)
    finally:
        await send(context.bot, services, ids, out)
