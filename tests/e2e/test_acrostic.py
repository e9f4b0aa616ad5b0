"""/acrostic end to end (issue 27): a poem model writes the form exactly, through the same
spine as every feature (settings, admission, one outcome per update, storing before sending,
the press door), and 🔁 draws the acrostic again."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import StoredSample
from tests.conftest import BundleFactory
from tests.e2e.conftest import Harness, with_poems

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]
NOT_VALID = "This button is not valid any more."


@pytest.fixture
def model_dir(tmp_path: Path, make_bundle: BundleFactory, poem_bundle: Path) -> Path:
    """The usual char model (the default) beside a poem model."""
    return with_poems(tmp_path, make_bundle, poem_bundle)


def poem_lines(message: dict[str, object]) -> list[str]:
    return str(message["text"]).split("\n\n")[0].split("\n")


async def samples(harness: Harness) -> list[StoredSample]:
    async def work(session: AsyncSession) -> list[StoredSample]:
        return list((await session.scalars(select(StoredSample).order_by(StoredSample.id))).all())

    found: list[StoredSample] = await harness.query(work)
    return found


async def test_an_acrostic_keeps_its_form_and_is_drawn_again_with_the_repeat_button(harness: Harness) -> None:
    h = harness
    ann, bo = h.sb.user("Ann", language_code="zh"), h.sb.user("Bo")
    group = h.sb.group("诗社", [ann, bo])
    update_id = h.sb.sandbox.state.next_update_id
    message = h.sb.send(ann, group, "/acrostic 新年快乐 7")
    (poem,) = await h.sb.wait_for_bot_messages(group, timeout=30)
    lines = poem_lines(poem)
    assert [line[0] for line in lines] == list("新年快乐")
    assert [len(line) for line in lines] == [8] * 4 and "".join(line[-1] for line in lines) == "，。，。"
    assert "tiny-tang" in str(poem["text"]) and "藏头诗「新年快乐」· 7 言" in str(poem["text"])
    (stored,) = await samples(h)
    assert stored.acrostic == "新年快乐|7" and stored.model_name == "tiny-tang" and stored.seed == "\n"
    assert "".join(lines) == stored.text

    # Delivered twice, answered once.
    before = len(h.sb.bot_messages(group))
    h.sb.redeliver({"update_id": update_id, "message": copy.deepcopy(message)})
    assert await h.quiet(group, 1.5) == 0 and len(await samples(h)) == 1

    # 🔁 draws the acrostic again (same heads, same form), as a new message.
    await h.press(bo, poem, button="🔁")
    (again,) = await h.sb.wait_for_bot_messages(group, after=before, timeout=30)
    assert [line[0] for line in poem_lines(again)] == list("新年快乐")
    assert [s.acrostic for s in await samples(h)] == ["新年快乐|7", "新年快乐|7"]
    # An acrostic has no 🆚 (its fixed form would decide a duel; the newcomer pass found a 🆚
    # that could only refuse); forged, it is refused; its buttons from another chat do nothing.
    labels = [b["text"] for m in (poem, again) for row in m["reply_markup"]["inline_keyboard"] for b in row]
    assert "🔁 再来" in labels and not any("🆚" in label for label in labels), labels
    assert (await h.press(bo, poem, f"vs:{stored.id}"))["text"] == NOT_VALID
    state = h.sb.sandbox.state
    state.chats[group].admins.add(state.bot["id"])  # the bot sees reactions where it is an admin
    h.sb.react(ann, poem, "👍")  # the keyboard drawn again from the stored sample: still no 🆚
    await h.sb.wait_until(lambda: "👍 1" in str(h.sb.message(group, poem["message_id"])))
    assert "🆚" not in str(h.sb.message(group, poem["message_id"])["reply_markup"])
    elsewhere = await h.say(bo, "/help")
    data = next(
        b["callback_data"]
        for row in poem["reply_markup"]["inline_keyboard"]
        for b in row
        if "🔁" in b["text"]
    )
    assert (await h.press(bo, elsewhere, data))["text"] == NOT_VALID


async def test_bad_heads_get_a_clear_answer_and_store_nothing(harness: Harness) -> None:
    ann = harness.sb.user("Ann", language_code="zh")
    assert "/acrostic 新年快乐 7" in (await harness.say(ann, "/acrostic hello"))["text"]
    assert "/acrostic 新年快乐 7" in (await harness.say(ann, "/acrostic 新年 6"))["text"]
    assert "龘" in (await harness.say(ann, "/acrostic 龘龘"))["text"]  # not in the model's vocabulary

    async def count(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count()).select_from(StoredSample)) or 0)

    assert await harness.query(count) == 0


async def test_a_poem_models_sample_is_shown_a_couplet_a_line(harness: Harness) -> None:
    h = harness
    ann = h.sb.user("Ann", language_code="zh")
    await h.say(ann, "/model tiny-tang")
    reply = await h.say(ann, "秦川雄帝宅，函谷壮皇居。", timeout=30)
    body = str(reply["text"]).rsplit("\n\n", 1)[0]  # the footer follows the last blank line
    (stored,) = await samples(h)
    assert body.split("\n")[0] == "秦川雄帝宅，函谷壮皇居。"  # the seed, then the next couplet below it
    # Every couplet that the sample ends ends a line; the characters are the sample's own.
    assert all(body[i + 1] == "\n" for i, ch in enumerate(body[:-1]) if ch in "。！？")
    assert body.replace("\n", "") == "秦川雄帝宅，函谷壮皇居。" + stored.text.replace("\n", "")
