"""The spine's conformance test: every generating feature, one table of shared rules.

Each feature (a seed, /gen, 🔁, /compare, /duel, /game, inline) runs for an English and a
Chinese user, in a private chat and in a group, with the shipped English and Chinese models.
The English user chose a length (/length 150, characters); the Chinese one never did (the word
level's default). On each the same rules are checked:

- the model resolved for the user (a Chinese client who never chose gets the Chinese model);
- the length resolved for the user, as the feature caps it (FEATURES' `length`): the stored
  `length` column says it, and every shown text is exactly what that length gives (regenerated
  from the stored rng seed, a game's real ending from the book, and cut by bot.finishing), so it
  ends by its level's rule, within the rule's margin of the length;
- what a message says of a text's length ("· 148 characters", "· 98 个词") counts the text in
  its level's unit, and the stored sample, shown again (/rate, the outbox, a redelivery), says
  the same;
- every message is under Telegram's 4,096 characters;
- every update delivered twice is answered once (nothing more stored, nothing more sent);
- every button of the feature pressed from a chat where it is not (a private chat of someone
  who was never in the group) is refused and changes nothing (the carrier check).

Where a rule cannot apply to a feature as written, its row in FEATURES says why. Failures are
collected, so one run reports every broken rule of a feature, not only the first.

A new generating feature joins FEATURES, or `test_every_generating_feature_is_in_the_table`
fails.
"""

from __future__ import annotations

import asyncio
import copy
import html
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import keyboards as kb
from bot.app import PRESS_HANDLERS
from bot.db.models import Duel, Game, Guess, InlineOffer, Rating, StoredSample
from bot.db.models import DuelVote as DuelVoteRow
from bot.finishing import asked, finished_pieces
from bot.parsing import format_temperature
from bot.render import MESSAGE_LIMIT, stored_sample_html, utf16_len
from bot.services import SERVICES_KEY, Services
from bot.texts import language_of, text
from core.generator import Request
from core.limits import default_length
from core.word_end import margin
from tests.e2e.conftest import Harness, make_settings, start_app, stop_app

pytestmark = pytest.mark.slow
Json = dict[str, Any]
MODELS = {"en": "nietzsche-char", "zh": "hongloumeng-word"}
SEEDS = {"en": "the will to truth", "zh": "宝玉笑道"}
GROUP_INLINE_SEEDS = {"en": "the will to power", "zh": "黛玉笑道"}
CHOSEN_LENGTH = {"en": 150, "zh": None}  # /length the user sent (None: never chose one)
INLINE_LENGTH = {"char": 300, "word": 80}
COMPARE_LENGTH = {"char": 200, "word": 50}  # /compare's parts and a duel's arms
GAME_PASSAGE = {"char": (200, 120), "word": (60, 30)}  # a game's seed and ending, in tokens
ROWS = (StoredSample, Duel, Game, InlineOffer, Rating, Guess, DuelVoteRow)  # what an update may store


@dataclass
class Shown:
    """A text the bot showed, with what made it."""

    model: str
    seed: str
    temperature: float
    rng: int | None  # None: not generated (a game's real ending: `book` holds the book's tokens)
    text: str
    stored: int | None = None  # its stored `length` column (None: the feature stores none)
    row: StoredSample | None = None  # its stored sample (shown again by /rate and the outbox)
    footers: list[str] = field(default_factory=list)  # texts of messages that show its length
    book: list[str] | None = None  # the book's tokens after the seed (a game's real ending)


@dataclass
class Made:
    """What one feature's update produced."""

    chat: int
    messages: list[Json]  # every message it made, for the size limit (inline results included)
    models: list[str]
    shown: list[Shown]
    updates: list[Json]  # updates to deliver again: each must store and send nothing
    buttons: list[str]  # callback data to press from another chat: each must be refused
    inline_buttons: list[str] = field(default_factory=list)  # ... and from another inline message
    cleanup: Callable[[], Awaitable[None]] | None = None  # run after the checks (a game is stopped)


Feature = Callable[[Harness, Json, int], Awaitable[Made]]


async def _rows(h: Harness, model: type) -> list[Any]:
    async def work(session: AsyncSession) -> list[Any]:
        return list((await session.scalars(select(model))).all())

    rows: list[Any] = await h.query(work)
    return rows


async def _count(h: Harness, model: type) -> int:
    async def work(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    count: int = await h.query(work)
    return count


async def _counts(h: Harness) -> dict[str, int]:
    async def work(session: AsyncSession) -> dict[str, int]:
        return {m.__name__: int(await session.scalar(select(func.count()).select_from(m)) or 0) for m in ROWS}

    counts: dict[str, int] = await h.query(work)
    return counts


async def _say(h: Harness, user: Json, chat: int, text: str, timeout: float = 60) -> tuple[Json, Json]:
    """Send as `user`; the update that carried it (to deliver again) and the bot's reply."""
    before = len(h.sb.bot_messages(chat))
    update_id = h.sb.sandbox.state.next_update_id
    message = h.sb.send(user, chat, text)
    (reply,) = await h.sb.wait_for_bot_messages(chat, after=before, timeout=timeout)
    return {"update_id": update_id, "message": copy.deepcopy(message)}, reply


def _buttons(message: Json) -> list[str]:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return [button["callback_data"] for row in rows for button in row if "callback_data" in button]


def _lang(user: Json) -> str:
    return language_of(user["language_code"])


def _stored(samples: list[StoredSample], footers: list[str]) -> list[Shown]:
    return [
        Shown(s.model_name, s.seed, s.temperature, s.rng_seed, s.text, s.length, s, list(footers))
        for s in samples
    ]


def _sample_command(write: Callable[[Json, int, str], str], *, footer: bool = True) -> Feature:
    """A feature that answers one message with stored samples: `write` says what to send;
    `footer`: its message shows the sample's length (a /compare shows four parts, no length)."""

    async def run(h: Harness, user: Json, chat: int) -> Made:
        before = await _count(h, StoredSample)
        sent, reply = await _say(h, user, chat, write(user, chat, SEEDS[_lang(user)]))
        samples = (await _rows(h, StoredSample))[before:]
        shown = _stored(samples, [reply["text"]] if footer else [])
        return Made(chat, [reply], [s.model_name for s in samples], shown, [sent], _buttons(reply))

    return run


seed = _sample_command(lambda user, chat, text: text if chat == user["id"] else f"@lstm_test_bot {text}")
gen = _sample_command(lambda user, chat, text: f"/gen {text}")
compare = _sample_command(lambda user, chat, text: f"/compare {text}", footer=False)


async def again(h: Harness, user: Json, chat: int) -> Made:
    _, first = await _say(h, user, chat, f"/gen {SEEDS[_lang(user)]}")
    before = await _count(h, StoredSample)
    count = len(h.sb.bot_messages(chat))
    press = h.sb.press_update(user, first, button="🔁")
    (reply,) = await h.sb.wait_for_bot_messages(chat, after=count, timeout=60)
    await h.sb.wait_for_answer(press["callback_query"]["id"])
    samples = (await _rows(h, StoredSample))[before:]
    shown = _stored(samples, [reply["text"]])
    return Made(chat, [reply], [s.model_name for s in samples], shown, [press], _buttons(reply))


async def duel(h: Harness, user: Json, chat: int) -> Made:
    sent, reply = await _say(h, user, chat, f"/duel {SEEDS[_lang(user)]}")
    (made,) = (await _rows(h, Duel))[-1:]
    shown = [
        Shown(made.model_a, made.seed, made.temperature_a, made.rng_seed_a, made.text_a, made.length),
        Shown(made.model_b, made.seed, made.temperature_b, made.rng_seed_b, made.text_b, made.length),
    ]
    return Made(chat, [reply], [made.model_a, made.model_b], shown, [sent], _buttons(reply))


async def game(h: Harness, user: Json, chat: int) -> Made:
    rngs: list[int] = h.extra["game_rngs"]
    passages: list[list[int] | None] = h.extra["passages"]
    drawn, taken = len(rngs), len(passages)
    # Long enough that the timer's reveal does not come while the checks run; stopped after.
    sent, reply = await _say(h, user, chat, "/game 120")
    (made,) = (await _rows(h, Game))[-1:]
    services: Services = h.app.bot_data[SERVICES_KEY]
    level = services.generation.info(made.model_name).level
    tokenizer = services.generation.generators[made.model_name].bundle.tokenizer
    # The passage kept is the last one drawn (drawn again only while its ending was mostly
    # blank); so is the model's ending (its redraws' rng seeds come after its first).
    assert len(passages) > taken and len(rngs) > drawn, "the game drew no passage or no ending"
    ids = passages[-1]
    assert ids is not None
    seed_len, _ = GAME_PASSAGE[level]
    assert tokenizer.decode(ids[:seed_len]).endswith(made.seed), made.seed[-30:]
    book = [tokenizer.tokens[i] for i in ids[seed_len:]]
    shown = [
        Shown(made.model_name, made.seed, made.temperature, None, made.real_text, book=book),
        Shown(made.model_name, made.seed, made.temperature, rngs[-1], made.fake_text),
    ]

    async def stop() -> None:  # so that the next run in this chat may start its own game
        await _say(h, user, chat, "/game stop")

    return Made(chat, [reply], [made.model_name], shown, [sent], _buttons(reply), cleanup=stop)


async def inline(h: Harness, user: Json, chat: int) -> Made:
    state = h.sb.sandbox.state
    chat_type = "private" if chat == user["id"] else "supergroup"
    # Another seed in the group: the same one within a minute would get the cached offer, whose
    # results were chosen already (a second choice of a taken offer stores nothing).
    seed = SEEDS[_lang(user)] if chat == user["id"] else GROUP_INLINE_SEEDS[_lang(user)]
    query = copy.deepcopy(state.inline_query(user["id"], seed, chat_type=chat_type))
    query_id = query["inline_query"]["id"]
    results = await h.sb.wait_for_inline_results(query_id, timeout=60)
    (offer,) = (await _rows(h, InlineOffer))[-1:]
    texts = [r["input_message_content"]["text"] for r in results]
    before = await _count(h, StoredSample)
    update_id = state.next_update_id
    posted = h.sb.choose_inline_result(user, chat, query_id, results[1]["id"])
    (chosen,) = [copy.deepcopy(u) for u in state.updates if u["update_id"] == update_id]
    sample = await _wait_for_sample(h, before)
    shown = [
        Shown(offer.model_name, offer.seed, c["temperature"], c["rng_seed"], c["text"], footers=[t])
        for c, t in zip(offer.candidates, texts, strict=True)
    ]
    # The chosen result (the user's own temperature) is the stored sample: the same text, and
    # the posted message shows it like its result did.
    assert (sample.text, sample.rng_seed) == (shown[1].text, shown[1].rng), sample.text[-40:]
    shown[1].stored, shown[1].row = sample.length, sample
    shown[1].footers.append(posted["text"])
    messages = [{"text": t} for t in texts] + [posted]
    sample_data = _sample_buttons(sample.id, _lang(user))
    return Made(
        chat,
        messages,
        [offer.model_name, sample.model_name],
        shown,
        [query, chosen],
        sample_data,
        inline_buttons=sample_data,
    )


def _sample_buttons(sample_id: int, lang: str) -> list[str]:
    """The buttons a sample's message carries (inline results carry none, but a press naming the
    sample may come from its inline message, so these are what could be pressed elsewhere)."""
    markup = kb.rating_keyboard(sample_id, 0, 0, lang, shared=False)
    return [str(button.callback_data) for row in markup.inline_keyboard for button in row]


async def _wait_for_sample(h: Harness, before: int) -> StoredSample:
    """The sample a chosen inline result stored (its update is handled asynchronously)."""
    for _ in range(400):
        samples: list[StoredSample] = (await _rows(h, StoredSample))[before:]
        if samples:
            (sample,) = samples
            return sample
        await asyncio.sleep(0.05)
    raise TimeoutError("the chosen inline result stored no sample")


@dataclass(frozen=True)
class Row:
    """A generating feature, and the length its texts are cut at."""

    run: Feature
    # The length its texts are cut at, from the user's resolved length (Who.length) and level.
    length: Callable[[int, str], int]


FEATURES: dict[str, Row] = {
    "seed": Row(seed, lambda resolved, level: resolved),
    "gen": Row(gen, lambda resolved, level: resolved),
    "again": Row(again, lambda resolved, level: resolved),  # redelivered: the press's update
    # /compare's message shows four parts and no length: the length footer is checked on the
    # stored parts alone (as /rate shows them).
    "compare": Row(compare, lambda resolved, level: min(resolved, COMPARE_LENGTH[level])),
    # A duel's arms are no samples: no length is shown and no sample row is rendered again; the
    # duel row's `length` column is checked.
    "duel": Row(duel, lambda resolved, level: min(resolved, COMPARE_LENGTH[level])),
    # A game's endings are as long as the book's held-out ending (not the user's length), and
    # neither shows its length nor is stored as a sample: both endings are checked against
    # the one rule at that length (the real one from the book's tokens, the model's one
    # regenerated from the rng seed it was drawn with). Its buttons (g:<id>:A, g:<id>:B) are
    # pressed from another chat while the game is open.
    "game": Row(game, lambda resolved, level: GAME_PASSAGE[level][1]),
    # Inline results belong to no chat until one is chosen: "one sample per update" is the
    # inline query delivered twice (no second offer) and the chosen_inline_result delivered
    # twice (no second sample). Its results carry no buttons; a press naming the chosen sample
    # (its rating, 🔁, 🌐, 🆚 data) is pressed from another chat and from another inline message.
    "inline": Row(inline, lambda resolved, level: min(resolved, INLINE_LENGTH[level])),
}


def test_every_generating_feature_is_in_the_table() -> None:
    """Every command that generates, and 🔁, is run by the conformance test."""
    from bot.handlers import duels, game, generate, inline

    generating: set[Callable[..., Any]] = {
        generate.on_gen,
        generate.on_private_text,
        generate.on_compare,
        duels.on_duel,
        game.on_game,
    }
    generating |= {inline.on_inline_query, PRESS_HANDLERS[kb.Again], PRESS_HANDLERS[kb.StartDuel]}
    names = {"on_gen": "gen", "on_private_text": "seed", "on_compare": "compare", "on_duel": "duel"}
    names |= {
        "on_game": "game",
        "on_inline_query": "inline",
        "on_again_press": "again",
        "on_start_duel_press": "duel",
    }
    assert {names[f.__name__] for f in generating} == set(FEATURES)


# Every function that admits generating work, and where its shared rules are checked: the
# table above, or (for a form that no finishing rule applies to) its own end-to-end test.
ADMITTING = {
    "continue_seed": "seed, gen, again",
    "on_compare": "compare",
    "start_duel": "duel",
    "on_game": "game",
    "on_inline_query": "inline",
    "write_acrostic": "tests/e2e/test_acrostic.py (an exact form: nothing to finish)",
}


def test_every_function_that_admits_work_is_checked_somewhere() -> None:
    """A new generating feature goes through `admit`: it fails here until it is in a table."""
    import ast
    import pkgutil

    import bot.handlers

    admitting = set()
    for module in pkgutil.iter_modules(bot.handlers.__path__):
        path = Path(bot.handlers.__path__[0]) / f"{module.name}.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                isinstance(call, ast.Call) and getattr(call.func, "id", None) == "admit"
                for call in ast.walk(node)
            ):
                admitting.add(node.name)
    assert admitting == set(ADMITTING)


async def _finished(services: Services, item: Shown, length: int) -> list[str]:
    """The tokens of `item` as the one finishing rule ends them at `length`: its generation
    redone from its rng seed (or the book's tokens), cut by bot.finishing."""
    level = services.generation.info(item.model).level
    if item.book is not None:
        return finished_pieces(item.book, length, level)
    assert item.rng is not None
    request = Request(item.seed, length=asked(length, level), temperature=item.temperature, rng=item.rng)
    full = await services.generation.generate(request, model=item.model)
    return finished_pieces(full.pieces, length, level)


def _footer(lang: str, item: Shown, count: int, level: str) -> str:
    unit = text(lang, "unit_char" if level == "char" else "unit_word")
    return text(
        lang,
        "footer",
        model=item.model,
        temperature=format_temperature(item.temperature),
        length=count,
        unit=unit,
    )


@pytest.fixture(scope="module")
def two_language_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped English and Chinese models (their books index the game's passages)."""
    folder = tmp_path_factory.mktemp("two-languages")
    shipped = Path(__file__).resolve().parents[2] / "models"
    for name in MODELS.values():
        (folder / name).symlink_to(shipped / name)
    return folder


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    """A fresh migrated SQLite database. The shared rules do not depend on the backend (the
    storage and end-to-end suites run on both), and CI's time is better spent elsewhere."""
    from migrations import upgrade

    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"
    await asyncio.to_thread(upgrade, url)
    return url


def _record_game_draws(monkeypatch: pytest.MonkeyPatch, h: Harness, services: Services) -> None:
    """Record what a game draws (its passage's token ids, its endings' rng seeds: the first
    drawn by the game, any redraw of an ending not whole by bot.finishing), which the bot
    stores nowhere, so that both endings can be made again and checked."""
    from bot import finishing
    from bot.handlers import game as game_module

    rngs: list[int] = []
    passages: list[list[int] | None] = []

    class Recording:
        """`secrets` as bot.handlers.game and bot.finishing see it, keeping every rng seed it
        hands out."""

        choice = staticmethod(secrets.choice)

        @staticmethod
        def randbits(k: int) -> int:
            value = secrets.randbits(k)
            rngs.append(value)
            return value

    passage = services.novelty.passage

    def recorded(model: str, tokens: int, rng: np.random.Generator) -> list[int] | None:
        ids = passage(model, tokens, rng)
        passages.append(ids)
        return ids

    monkeypatch.setattr(game_module, "secrets", Recording)
    monkeypatch.setattr(finishing, "secrets", Recording)
    monkeypatch.setattr(services.novelty, "passage", recorded)
    h.extra["game_rngs"], h.extra["passages"] = rngs, passages


Expect = Callable[[bool, str], None]  # a rule checked: (kept, what broke it)


async def _check_texts(services: Services, made: Made, lang: str, length: int, expect: Expect) -> None:
    """The resolved model and length, finished texts, the length shown, the size limit."""
    # The model of the user's language (a Chinese client who never chose one).
    expect(set(made.models) == {MODELS[lang]}, f"models {made.models}")
    level = services.generation.info(MODELS[lang]).level
    for item in made.shown:
        what = f"{item.text[:20]!r}…{item.text[-20:]!r}"
        # The resolved length, as stored and as every text is cut: exactly the text generated
        # for it (or the book's), ended by its level's rule within the rule's margin.
        if item.stored is not None:
            expect(item.stored == length, f"{what}: stored length {item.stored}, resolved {length}")
        pieces = await _finished(services, item, length)
        finished = "".join(pieces).rstrip() == item.text
        expect(finished, f"{what} is not the text of length {length} finished by its level's rule")
        count = len(item.text) if level == "char" else len(pieces)
        low = length - margin(level) if level == "char" else length // 2
        expect(low <= count <= length + margin(level), f"{what}: {count} {level}s for length {length}")
        # What a message says of its length counts the text in its level's unit, and the
        # stored sample shown again (/rate, the outbox, a redelivery) says the same.
        footer = _footer(lang, item, count, level)
        for shown in item.footers:
            expect(footer in shown, f"{what}: shown with {shown[-50:]!r}, not {footer!r}")
        if item.row is not None:
            again = stored_sample_html(services.generation, item.row, lang)
            says = html.escape(footer, quote=False) in again
            expect(says, f"{what}: shown again (/rate, outbox) with {again[-50:]!r}, not {footer!r}")
    for message in made.messages:
        size = utf16_len(message.get("text", ""))
        expect(size <= MESSAGE_LIMIT, f"a message of {size} characters")


async def _check_once_and_carried(
    h: Harness, made: Made, user: Json, stranger: Json, elsewhere: Json, expect: Expect
) -> None:
    """Each update delivered twice is answered once; each button pressed from another chat (a
    private chat of someone never in the group), or from another inline message, is refused,
    and nothing is stored or sent."""
    sb = h.sb
    counts = await _counts(h)
    watched = (made.chat, elsewhere["chat"]["id"])
    sent = {chat: len(sb.bot_messages(chat)) for chat in watched}
    for update in made.updates:
        sb.redeliver(update)
    if made.updates:
        expect(await h.quiet(made.chat, 1.5) == 0, "a redelivered update was answered again")
        now = await _counts(h)
        expect(now == counts, f"stored after a redelivery: {counts} -> {now}")
    for data in made.buttons:
        answer = await h.press(stranger, elsewhere, data)
        refused = text(_lang(stranger), "button_invalid")
        expect(answer["text"] == refused, f"{data} pressed from another chat: {answer['text']!r}")
    for data in made.inline_buttons:
        query = sb.press_without_message(user, data, inline_message_id="AgAAAElsewhere1")
        answer = await sb.wait_for_answer(query)
        refused = text(_lang(user), "button_invalid")
        expect(answer["text"] == refused, f"{data} pressed from another inline message: {answer['text']!r}")
    if made.buttons or made.inline_buttons:
        await h.quiet(made.chat, 0.5)
        now_sent = {chat: len(sb.bot_messages(chat)) for chat in watched}
        expect(now_sent == sent, f"messages after refused presses: {sent} -> {now_sent}")
        now = await _counts(h)
        expect(now == counts, f"stored after refused presses: {counts} -> {now}")


@pytest.mark.parametrize("feature", list(FEATURES))
async def test_every_feature_keeps_the_shared_rules(
    feature: str, sqlite_url: str, two_language_models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database_url = sqlite_url
    from sandbox.testing import SandboxServer

    row = FEATURES[feature]
    failures: list[str] = []
    async with SandboxServer() as sb:
        settings = make_settings(sb, database_url, two_language_models, default_model=MODELS["en"])
        app = await start_app(settings, two_language_models)
        services: Services = app.bot_data[SERVICES_KEY]
        await services.novelty.wait_ready()
        from bot.db.database import Database

        db = Database.from_url(database_url)
        h = Harness(sb=sb, settings=settings, app=app, db=db)
        _record_game_draws(monkeypatch, h, services)
        try:
            for lang in ("en", "zh"):
                user = sb.user(f"U{lang}", language_code="zh-hans" if lang == "zh" else "en")
                other, stranger = sb.user(f"O{lang}"), sb.user(f"S{lang}")  # the stranger: never in the group
                group = sb.group(f"G{lang}", [user, other])
                level = services.generation.info(MODELS[lang]).level
                chosen = CHOSEN_LENGTH[lang]
                if chosen is not None:
                    await _say(h, user, user["id"], f"/length {chosen}")
                length = row.length(chosen if chosen is not None else default_length(level), level)
                elsewhere = (await _say(h, stranger, stranger["id"], "/help"))[1]
                for chat in (user["id"], group):
                    where = f"{feature} / {lang} / {'private' if chat > 0 else 'group'}"

                    def expect(ok: bool, what: str, where: str = where) -> None:
                        if not ok:
                            failures.append(f"{where}: {what}")

                    made = await row.run(h, user, chat)
                    await _check_texts(services, made, lang, length, expect)
                    await _check_once_and_carried(h, made, user, stranger, elsewhere, expect)
                    if made.cleanup is not None:
                        await made.cleanup()
        finally:
            await stop_app(app)
            await db.dispose()
    assert not failures, "\n".join(failures)
