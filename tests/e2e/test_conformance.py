"""The spine's conformance test: every generating feature, one table of shared rules.

Each feature (a seed, /gen, 🔁, /compare, /duel, /game, inline) runs for an English and a
Chinese user, in a private chat and in a group, with the shipped English and Chinese models.
On each the same rules are checked:

- the model resolved for the user (a Chinese client who never chose gets the Chinese model);
- every shown text is finished by its level's rule (regenerated from the stored rng seed and
  cut by bot.finishing, it is exactly what was shown; a game's real ending ends on a word);
- every message is under Telegram's 4,096 characters;
- the update delivered twice is answered once (nothing more stored, nothing more sent);
- a press of the feature's button from another chat is refused (the carrier check).

A new generating feature joins FEATURES, or `test_every_generating_feature_is_in_the_table`
fails.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import PRESS_HANDLERS
from bot.db.models import Duel, Game, InlineOffer, StoredSample
from bot.finishing import asked, finished_text
from bot.render import MESSAGE_LIMIT, utf16_len
from bot.services import SERVICES_KEY, Services
from core.generator import Request
from tests.e2e.conftest import Harness, make_settings, start_app, stop_app

pytestmark = pytest.mark.slow
Json = dict[str, Any]
MODELS = {"en": "nietzsche-char", "zh": "hongloumeng-word"}
SEEDS = {"en": "the will to truth", "zh": "宝玉笑道"}


@dataclass
class Shown:
    """A text the bot showed, with what made it."""

    model: str
    seed: str
    temperature: float
    length: int
    rng: int
    text: str


@dataclass
class Made:
    """What one feature's update produced."""

    update: Json | None  # the update to deliver again (None: inline, delivered by the sandbox)
    chat: int
    messages: list[Json]
    models: list[str]
    shown: list[Shown] = field(default_factory=list)
    button: str | None = None  # callback data of one of its buttons


Feature = Callable[[Harness, Json, int], Awaitable[Made]]


async def _rows(h: Harness, model: type) -> list[Any]:
    async def work(session: AsyncSession) -> list[Any]:
        return list((await session.scalars(select(model).order_by(model.id))).all())  # type: ignore[attr-defined]

    return await h.query(work)


async def _count(h: Harness, model: type) -> int:
    async def work(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    return await h.query(work)


async def _say(h: Harness, user: Json, chat: int, text: str, timeout: float = 60) -> tuple[Json, Json]:
    """Send as `user`; the update that carried it (to deliver again) and the bot's reply."""
    before = len(h.sb.bot_messages(chat))
    update_id = h.sb.sandbox.state.next_update_id
    message = h.sb.send(user, chat, text)
    (reply,) = await h.sb.wait_for_bot_messages(chat, after=before, timeout=timeout)
    return {"update_id": update_id, "message": copy.deepcopy(message)}, reply


def _first_button(message: Json) -> str | None:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return rows[0][0]["callback_data"] if rows else None


async def _samples_made(h: Harness, reply: Json, update: Json, chat: int, before: int) -> Made:
    samples = (await _rows(h, StoredSample))[before:]
    shown = [Shown(s.model_name, s.seed, s.temperature, s.length, s.rng_seed, s.text) for s in samples]
    return Made(update, chat, [reply], [s.model_name for s in samples], shown, _first_button(reply))


def _sample_command(write: Callable[[Json, int, str], str]) -> Feature:
    """A feature that answers one message with stored samples: `write` says what to send."""

    async def run(h: Harness, user: Json, chat: int) -> Made:
        before = await _count(h, StoredSample)
        sent, reply = await _say(h, user, chat, write(user, chat, SEEDS[user["language_code"][:2]]))
        return await _samples_made(h, reply, sent, chat, before)

    return run


seed = _sample_command(lambda user, chat, text: text if chat == user["id"] else f"@lstm_test_bot {text}")
gen = _sample_command(lambda user, chat, text: f"/gen {text}")
compare = _sample_command(lambda user, chat, text: f"/compare {text}")


async def again(h: Harness, user: Json, chat: int) -> Made:
    _, first = await _say(h, user, chat, f"/gen {SEEDS[user['language_code'][:2]]}")
    before = await _count(h, StoredSample)
    count = len(h.sb.bot_messages(chat))
    press = h.sb.press_update(user, first, button="🔁")
    (reply,) = await h.sb.wait_for_bot_messages(chat, after=count, timeout=60)
    await h.sb.wait_for_answer(press["callback_query"]["id"])
    return await _samples_made(h, reply, press, chat, before)


async def duel(h: Harness, user: Json, chat: int) -> Made:
    sent, reply = await _say(h, user, chat, f"/duel {SEEDS[user['language_code'][:2]]}")
    (made,) = (await _rows(h, Duel))[-1:]
    shown = [
        Shown(made.model_a, made.seed, made.temperature_a, made.length, made.rng_seed_a, made.text_a),
        Shown(made.model_b, made.seed, made.temperature_b, made.length, made.rng_seed_b, made.text_b),
    ]
    update = sent
    return Made(update, chat, [reply], [made.model_a, made.model_b], shown, _first_button(reply))


async def game(h: Harness, user: Json, chat: int) -> Made:
    sent, reply = await _say(h, user, chat, "/game 10")
    (made,) = (await _rows(h, Game))[-1:]
    services: Services = h.app.bot_data[SERVICES_KEY]
    book = services.novelty.books[made.model_name]
    tokenizer = services.generation.generators[made.model_name].bundle.tokenizer
    held_out = tokenizer.decode(book.heldout)
    if made.model_name == MODELS["en"]:  # the real ending stops where the book has a word end
        at = held_out.index(made.real_text) + len(made.real_text)
        assert held_out[at].isspace() or held_out[at - 1] in ".,;:!?)'\"", made.real_text[-30:]
    # Stopped so that the next run in this chat may start its own game.
    await _say(h, user, chat, "/game stop")
    update = sent
    return Made(update, chat, [reply], [made.model_name], [], _first_button(reply))


async def inline(h: Harness, user: Json, chat: int) -> Made:
    query_id = h.sb.inline_query(
        user, SEEDS[user["language_code"][:2]], chat_type="private" if chat == user["id"] else "supergroup"
    )
    results = await h.sb.wait_for_inline_results(query_id, timeout=60)
    (offer,) = (await _rows(h, InlineOffer))[-1:]
    shown = [
        Shown(offer.model_name, offer.seed, c["temperature"], 0, c["rng_seed"], c["text"])
        for c in offer.candidates
    ]
    messages = [{"text": r["input_message_content"]["text"]} for r in results]
    return Made(None, chat, messages, [offer.model_name], shown)


FEATURES: dict[str, Feature] = {
    "seed": seed,
    "gen": gen,
    "again": again,
    "compare": compare,
    "duel": duel,
    "game": game,
    "inline": inline,
}
INLINE_LENGTH = {"char": 300, "word": 80}
COMPARE_LENGTH = {"char": 200, "word": 50}


def test_every_generating_feature_is_in_the_table() -> None:
    """Every command that generates, and 🔁, is run by the conformance test."""
    from bot import keyboards as kb
    from bot.handlers import duels, game, generate, inline

    generating = {generate.on_gen, generate.on_private_text, generate.on_compare, duels.on_duel, game.on_game}
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


async def _check_finished(services: Services, item: Shown, length: int) -> None:
    info = services.generation.info(item.model)
    request = Request(item.seed, length=asked(length, info.level), temperature=item.temperature, rng=item.rng)
    full = await services.generation.generate(request, model=item.model)
    assert item.text == finished_text(full.pieces, length, info.level), (item.model, item.text[-40:])


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
    import asyncio

    from migrations import upgrade

    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"
    await asyncio.to_thread(upgrade, url)
    return url


@pytest.mark.parametrize("feature", list(FEATURES))
async def test_every_feature_keeps_the_shared_rules(
    feature: str, sqlite_url: str, two_language_models: Path
) -> None:
    database_url = sqlite_url
    from sandbox.testing import SandboxServer

    async with SandboxServer() as sb:
        settings = make_settings(sb, database_url, two_language_models, default_model=MODELS["en"])
        app = await start_app(settings, two_language_models)
        services: Services = app.bot_data[SERVICES_KEY]
        await services.novelty.wait_ready()
        from bot.db.database import Database

        db = Database.from_url(database_url)
        h = Harness(sb=sb, settings=settings, app=app, db=db)
        try:
            for lang in ("en", "zh"):
                user = sb.user(f"U{lang}", language_code="zh-hans" if lang == "zh" else "en")
                other = sb.user(f"O{lang}")
                group = sb.group(f"G{lang}", [user, other])
                for chat in (user["id"], group):
                    made = await FEATURES[feature](h, user, chat)
                    where = f"{feature} / {lang} / {'private' if chat > 0 else 'group'}"
                    # The model of the user's language (a Chinese client who never chose one).
                    assert set(made.models) == {MODELS[lang]}, where
                    # Every text finished by its level's rule, every message within the limit.
                    level = services.generation.info(MODELS[lang]).level
                    for item in made.shown:
                        length = item.length or INLINE_LENGTH[level]
                        if feature == "compare":
                            length = min(length, COMPARE_LENGTH[level])
                        await _check_finished(services, item, length)
                    for message in made.messages:
                        assert utf16_len(message.get("text", "")) <= MESSAGE_LIMIT, where
                    # Delivered twice, answered once.
                    if made.update is not None:
                        counts = [await _count(h, m) for m in (StoredSample, Duel, Game)]
                        sent = len(sb.bot_messages(chat))
                        sb.redeliver(made.update)
                        assert await h.quiet(chat, 1.5) == 0, where
                        assert [await _count(h, m) for m in (StoredSample, Duel, Game)] == counts, where
                    # Its button pressed from another chat (data copied onto another message).
                    if made.button is not None and feature != "game":
                        elsewhere = (await _say(h, other, other["id"], "/help"))[1]
                        answer = await h.press(other, elsewhere, made.button)
                        assert answer["text"] == "This button is not valid any more.", where
                        assert len(sb.bot_messages(chat)) == sent, where
        finally:
            await stop_app(app)
            await db.dispose()
