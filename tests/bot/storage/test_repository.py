"""Repository functions: what the handlers call."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import repository as repo
from bot.db.database import Database
from bot.db.models import DOWN, UP, AnonymousReactions, Chat, Rating, StoredSample, User, utcnow
from bot.parsing import effective_length
from core.limits import default_length
from tests.bot.storage.factories import make_chat, make_game, make_sample, make_user, make_world


async def test_get_or_create_user_creates_once_and_refreshes_names(db: Database) -> None:
    async with db.sessions() as session:
        user = await repo.get_or_create_user(session, telegram_id=42, display_name="Ann", language_code="en")
        again = await repo.get_or_create_user(session, telegram_id=42, display_name="Ann B.")
        await session.commit()
        assert again.id == user.id and again.display_name == "Ann B."
        assert again.language_code == "en"  # None means "unknown", not "clear"
        assert await repo.get_user(session, telegram_id=43) is None
        assert await session.scalar(select(func.count()).select_from(User)) == 1


async def test_user_settings(db: Database) -> None:
    async with db.sessions() as session:
        user = await make_user(session)
        assert (await repo.set_user_temperature(session, user_id=user.id, temperature=1.2)).temperature == 1.2
        assert (await repo.set_user_temperature(session, user_id=user.id, temperature=0)).temperature == 0
        assert (
            await repo.set_user_length(session, user_id=user.id, level="char", length=120)
        ).length_char == 120
        assert (
            await repo.set_user_length(session, user_id=user.id, level="word", length=30)
        ).length_word == 30
        assert (
            await repo.set_user_model(session, user_id=user.id, model_name=" zh-word ")
        ).model_name == "zh-word"
        assert (await repo.set_user_model(session, user_id=user.id, model_name=None)).model_name is None
        for bad_t in (-0.1, 2.000001, math.nan, math.inf):
            with pytest.raises(ValueError, match="temperature"):
                await repo.set_user_temperature(session, user_id=user.id, temperature=bad_t)
        for level, bad_n in (("char", 19), ("char", 2001), ("word", 4), ("word", 401)):
            with pytest.raises(ValueError, match="length"):
                await repo.set_user_length(session, user_id=user.id, level=level, length=bad_n)
        with pytest.raises(ValueError, match="level"):
            await repo.set_user_length(session, user_id=user.id, level="byte", length=100)
        with pytest.raises(ValueError, match="model name"):
            await repo.set_user_model(session, user_id=user.id, model_name="  ")
        with pytest.raises(repo.NotFound):
            await repo.set_user_temperature(session, user_id=user.id + 1000, temperature=1.0)
        await session.commit()
    async with db.sessions() as session:
        stored = await repo.get_user(session, telegram_id=user.telegram_id)
        assert stored is not None
        assert (stored.temperature, stored.length_char, stored.length_word, stored.model_name) == (
            0.0,
            120,
            30,
            None,
        )


async def test_chats_and_resolved_settings(db: Database) -> None:
    async with db.sessions() as session:
        user = await make_user(session)
        private = await repo.get_or_create_chat(session, telegram_id=user.telegram_id, type="private")
        group = await repo.get_or_create_chat(session, telegram_id=-5, type="group", title="G")
        renamed = await repo.get_or_create_chat(session, telegram_id=-5, type="supergroup", title="H")
        assert renamed.id == group.id and (renamed.type, renamed.title) == ("supergroup", "H")
        with pytest.raises(ValueError, match="chat type"):
            await repo.get_or_create_chat(session, telegram_id=-6, type="forum")

        # Nothing chosen anywhere: the bot's defaults (a None length is the model level's).
        assert repo.resolve_settings(user, private, default_model="m0") == repo.GenerationSettings(
            temperature=0.5, length_char=None, length_word=None, model_name="m0"
        )
        await repo.set_group_defaults(session, chat_id=group.id, temperature=1.5, model_name="zh")
        await repo.set_group_defaults(session, chat_id=group.id, length=50, level="word")
        assert (group.temperature, group.length_char, group.length_word, group.model_name) == (
            1.5,
            None,
            50,
            "zh",
        )
        # A member who chose nothing gets the group's defaults ...
        assert repo.resolve_settings(user, group, default_model="m0") == repo.GenerationSettings(
            temperature=1.5, length_char=None, length_word=50, model_name="zh"
        )
        # ... and what a member chose wins over them; a private chat never has group defaults.
        await repo.set_user_temperature(session, user_id=user.id, temperature=0.9)
        await repo.set_user_length(session, user_id=user.id, level="char", length=300)
        assert repo.resolve_settings(user, group, default_model="m0") == repo.GenerationSettings(
            temperature=0.9, length_char=300, length_word=50, model_name="zh"
        )
        assert repo.resolve_settings(user, private, default_model="m0").temperature == 0.9
        assert repo.resolve_settings(user, private, default_model="m0").length_word is None
        # None clears a default; arguments left out stay as they were.
        await repo.set_group_defaults(session, chat_id=group.id, model_name=None)
        assert (group.temperature, group.length_word, group.model_name) == (1.5, 50, None)
        assert repo.resolve_settings(user, group, default_model="m0").model_name == "m0"
        assert repo.resolve_settings(user, None, default_model="m0").model_name == "m0"
        with pytest.raises(ValueError):
            await repo.set_group_defaults(session, chat_id=group.id, temperature=9)
        with pytest.raises(repo.NotFound):
            await repo.set_group_defaults(session, chat_id=group.id + 99, length=10, level="word")
        with pytest.raises(ValueError, match="level"):
            await repo.set_group_defaults(session, chat_id=group.id, length=100)  # no level
        await repo.set_group_defaults(session, chat_id=group.id, length=900, level="char")
        await repo.set_group_defaults(session, chat_id=group.id, length=None)  # both levels
        assert (group.length_char, group.length_word) == (None, None)
        await session.commit()
        assert (await repo.get_chat(session, telegram_id=-5)) is not None


async def test_sample_lifecycle(db: Database) -> None:
    async with db.sessions() as session:
        user = await make_user(session)
        chat = await make_chat(session, telegram_id=-100)
        sample_id = await repo.record_sample(
            session,
            user_id=user.id,
            chat_id=chat.id,
            seed="Hello ",
            model_name="nietzsche-char",
            model_version="2",
            temperature=0.2,
            length=30,
            text="world",
            generation_ms=15,
            rng_seed=2**62,
        )
        sample = await session.get(StoredSample, sample_id)
        assert sample is not None and not sample.delivered and sample.telegram_message_id is None
        assert (sample.up_votes, sample.down_votes) == (0, 0)
        assert await repo.set_sample_message_id(session, sample_id=sample.id, message_id=777)
        await session.commit()
    async with db.sessions() as session:
        found = await repo.get_sample(session, sample_id=sample.id)
        assert found is not None and found.delivered and found.telegram_message_id == 777
        assert found.rng_seed == 2**62
        assert not await repo.set_sample_message_id(session, sample_id=sample.id + 5, message_id=1)
        assert await repo.get_sample_by_update(session, update_id=31337) is None
        first = await make_sample(session, user=user, chat=chat, update_id=31337)
        second = await make_sample(session, user=user, chat=chat, update_id=31337)
        by_update = await repo.get_sample_by_update(session, update_id=31337)
        assert by_update is not None and by_update.id == second.id != first.id
        for bad in ({"temperature": 2.5}, {"length": 0}, {"rng_seed": 2**63}):
            with pytest.raises(ValueError):
                await make_sample(session, user=user, chat=chat, **bad)
        assert await repo.get_sample(session, sample_id=sample.id + 1000) is None


async def test_rate_unrate_toggle(db: Database) -> None:
    async with db.sessions() as session:
        _author, _chat, sample = await make_world(session)
        a, b = await make_user(session), await make_user(session)
        sid = sample.id

        state = await repo.rate(session, sample_id=sid, user_id=a.id, score=UP)
        assert state == repo.RatingState(sid, UP, repo.Votes(1, 0), True)
        # The same click again counts once.
        assert await repo.rate(session, sample_id=sid, user_id=a.id, score=UP) == repo.RatingState(
            sid, UP, repo.Votes(1, 0), False
        )
        # Changing one's mind moves the vote.
        state = await repo.rate(session, sample_id=sid, user_id=a.id, score=DOWN)
        assert (state.score, state.votes) == (DOWN, repo.Votes(0, 1))
        state = await repo.toggle_rating(session, sample_id=sid, user_id=b.id, score=DOWN)
        assert (state.score, state.votes, state.votes.net, state.votes.total) == (
            DOWN,
            repo.Votes(0, 2),
            -2,
            2,
        )
        # Pressing the same button withdraws; pressing it again puts it back.
        state = await repo.toggle_rating(session, sample_id=sid, user_id=b.id, score=DOWN)
        assert (state.score, state.votes, state.changed) == (None, repo.Votes(0, 1), True)
        state = await repo.toggle_rating(session, sample_id=sid, user_id=b.id, score=UP)
        assert (state.score, state.votes) == (UP, repo.Votes(1, 1))
        state = await repo.toggle_rating(session, sample_id=sid, user_id=a.id, score=DOWN)
        assert (state.score, state.votes) == (None, repo.Votes(1, 0))

        assert await repo.get_votes(session, sample_id=sid) == repo.Votes(1, 0)
        assert sample.up_votes == 1  # the loaded object is kept in step
        for bad in (0, 2, True):
            with pytest.raises(ValueError, match="score"):
                await repo.rate(session, sample_id=sid, user_id=a.id, score=bad)
        with pytest.raises(repo.NotFound):
            await repo.toggle_rating(session, sample_id=sid + 1000, user_id=a.id, score=UP)
        with pytest.raises(repo.NotFound):
            await repo.get_votes(session, sample_id=sid + 1000)


async def test_a_reaction_and_a_button_share_one_rating(db: Database) -> None:
    """The last thing that changed a rating owns it: a removed reaction withdraws only a rating
    that reaction gave; an agreeing reaction leaves a button's rating the button's."""
    async with db.sessions() as session:
        _author, _chat, sample = await make_world(session)
        a = await make_user(session)
        sid = sample.id

        async def source() -> str | None:
            return await session.scalar(select(Rating.source).where(Rating.user_id == a.id))

        state = await repo.rate_by_reaction(session, sample_id=sid, user_id=a.id, score=UP, added=True)
        assert (state.score, state.votes, state.changed, await source()) == (
            UP,
            repo.Votes(1, 0),
            True,
            "reaction",
        )
        state = await repo.rate_by_reaction(session, sample_id=sid, user_id=a.id, score=DOWN, added=True)
        assert (state.score, state.votes) == (DOWN, repo.Votes(0, 1))
        state = await repo.rate_by_reaction(session, sample_id=sid, user_id=a.id, score=None, added=False)
        assert (state.score, state.votes, state.changed) == (None, repo.Votes(0, 0), True)
        # A removal never creates a rating.
        state = await repo.rate_by_reaction(session, sample_id=sid, user_id=a.id, score=UP, added=False)
        assert (state.score, state.changed) == (None, False)

        # React, then press the other button: one rating, the button's; the reaction's removal
        # leaves it.
        await repo.rate_by_reaction(session, sample_id=sid, user_id=a.id, score=UP, added=True)
        state = await repo.toggle_rating(session, sample_id=sid, user_id=a.id, score=DOWN)
        assert (state.score, state.votes, await source()) == (DOWN, repo.Votes(0, 1), "button")
        state = await repo.rate_by_reaction(session, sample_id=sid, user_id=a.id, score=None, added=False)
        assert (state.score, state.votes, state.changed) == (DOWN, repo.Votes(0, 1), False)
        # An agreeing reaction keeps the button's ownership; a disagreeing one takes it over.
        await repo.rate_by_reaction(session, sample_id=sid, user_id=a.id, score=DOWN, added=True)
        assert await source() == "button"
        await repo.rate_by_reaction(session, sample_id=sid, user_id=a.id, score=UP, added=True)
        assert await source() == "reaction"
        # Pressing the button matching a reaction's rating withdraws it, as any press does.
        state = await repo.toggle_rating(session, sample_id=sid, user_id=a.id, score=UP)
        assert (state.score, state.votes) == (None, repo.Votes(0, 0))
        assert await session.scalar(select(func.count()).select_from(Rating)) == 0
        assert sample.up_votes == 0 and sample.down_votes == 0
        with pytest.raises(ValueError, match="score"):
            await repo.rate_by_reaction(session, sample_id=sid, user_id=a.id, score=2, added=True)


async def test_anonymous_reaction_counts_keep_the_newest(db: Database) -> None:
    async with db.sessions() as session:
        _author, _chat, sample = await make_world(session)
        now = utcnow()

        async def counts() -> tuple[int, int]:
            row = (
                await session.execute(
                    select(AnonymousReactions.likes, AnonymousReactions.dislikes).where(
                        AnonymousReactions.sample_id == sample.id
                    )
                )
            ).one()
            return int(row[0]), int(row[1])

        await repo.set_anonymous_reactions(session, sample_id=sample.id, likes=3, dislikes=1, counted_at=now)
        assert await counts() == (3, 1)
        await repo.set_anonymous_reactions(
            session, sample_id=sample.id, likes=9, dislikes=9, counted_at=now - timedelta(seconds=5)
        )
        assert await counts() == (3, 1)  # an older count arriving late changes nothing
        await repo.set_anonymous_reactions(
            session, sample_id=sample.id, likes=4, dislikes=0, counted_at=now + timedelta(seconds=1)
        )
        assert await counts() == (4, 0)
        assert (sample.up_votes, sample.down_votes) == (0, 0)  # counts only, never ratings
        await session.commit()


async def test_top_samples(db: Database) -> None:
    async with db.sessions() as session:
        author = await make_user(session)
        raters = [await make_user(session) for _ in range(4)]
        chat1, chat2 = await make_chat(session), await make_chat(session)
        s = {
            "a": await make_sample(session, user=author, chat=chat1),
            "b": await make_sample(session, user=author, chat=chat1, model_name="zh-word"),
            "c": await make_sample(session, user=author, chat=chat2),
            "d": await make_sample(session, user=author, chat=chat2),
            "e": await make_sample(session, user=author, chat=chat2),  # unrated
        }
        votes = {"a": [UP, UP, UP], "b": [UP, UP, UP, UP], "c": [UP, UP, DOWN], "d": [DOWN]}
        for key, scores in votes.items():
            for rater, score in zip(raters, scores, strict=False):
                await repo.rate(session, sample_id=s[key].id, user_id=rater.id, score=score)
        await session.commit()

        def keys(samples: list[StoredSample]) -> list[str]:
            by_id = {sample.id: key for key, sample in s.items()}
            return [by_id[sample.id] for sample in samples]

        assert keys(await repo.top_samples(session)) == ["b", "a", "c"]
        assert keys(await repo.top_samples(session, limit=1)) == ["b"]
        assert keys(await repo.top_samples(session, chat_id=chat2.id)) == ["c"]
        assert keys(await repo.top_samples(session, model_name="nietzsche-char")) == ["a", "c"]
        assert keys(await repo.top_samples(session, chat_id=chat2.id, min_net=-5)) == ["c", "e", "d"]
        future = datetime.now(UTC) + timedelta(hours=1)
        assert await repo.top_samples(session, since=future) == []
        # Outside their chats: a viewer sees their own samples and shared ones, nobody else's.
        assert await repo.top_samples(session, visible_to=raters[0].id) == []
        assert await repo.top_samples(session, visible_to=None) == []
        assert keys(await repo.top_samples(session, visible_to=author.id)) == ["b", "a", "c"]
        assert await repo.set_shared(session, sample_id=s["a"].id, shared=True)
        assert keys(await repo.top_samples(session, visible_to=raters[0].id)) == ["a"]
        assert keys(await repo.top_samples(session, visible_to=None)) == ["a"]
        assert await repo.set_shared(session, sample_id=s["a"].id, shared=False)
        assert await repo.top_samples(session, visible_to=raters[0].id) == []
        assert not await repo.set_shared(session, sample_id=s["e"].id + 100, shared=True)


async def test_pick_unrated_sample(db: Database) -> None:
    async with db.sessions() as session:
        me, other, third = await make_user(session), await make_user(session), await make_user(session)
        chat, elsewhere = await make_chat(session), await make_chat(session)
        mine = await make_sample(session, user=me, chat=chat)
        popular = await make_sample(session, user=other, chat=chat)
        quiet = await make_sample(session, user=other, chat=chat)
        await make_sample(session, user=other, chat=chat, delivered=False)
        far = await make_sample(session, user=other, chat=elsewhere)
        await repo.rate(session, sample_id=popular.id, user_id=third.id, score=UP)
        await repo.rate(session, sample_id=far.id, user_id=third.id, score=UP)
        await repo.rate(session, sample_id=mine.id, user_id=third.id, score=DOWN)

        picked = await repo.pick_unrated_sample(session, user_id=me.id, chat_id=chat.id)
        assert picked is not None and picked.id == quiet.id  # fewest ratings first
        await repo.rate(session, sample_id=quiet.id, user_id=me.id, score=UP)
        picked = await repo.pick_unrated_sample(session, user_id=me.id, chat_id=chat.id)
        assert picked is not None and picked.id == popular.id
        await repo.rate(session, sample_id=popular.id, user_id=me.id, score=DOWN)
        # Own and undelivered samples are never offered.
        assert await repo.pick_unrated_sample(session, user_id=me.id, chat_id=chat.id) is None
        # Elsewhere, only what its author shared.
        assert await repo.pick_unrated_sample(session, user_id=me.id, chat_id=None) is None
        await repo.set_shared(session, sample_id=far.id, shared=True)
        anywhere = await repo.pick_unrated_sample(session, user_id=me.id, chat_id=None)
        assert anywhere is not None and anywhere.id == far.id
        found = await repo.get_sample_origin(session, sample_id=far.id)
        assert found is not None and found.sample.shared
        assert (found.chat_telegram_id, found.author_telegram_id) == (
            elsewhere.telegram_id,
            other.telegram_id,
        )
        assert await repo.get_sample_origin(session, sample_id=far.id + 100) is None


async def test_user_and_admin_stats(db: Database) -> None:
    async with db.sessions() as session:
        empty = await repo.admin_stats(session)
        assert (empty.users, empty.samples, empty.ratings, empty.models) == (0, 0, 0, [])
        author, chat, first = await make_world(session)
        second = await make_sample(
            session, user=author, chat=chat, model_name="zh-word", generation_ms=30, delivered=False
        )
        fan = await make_user(session)
        await repo.get_or_create_chat(session, telegram_id=fan.telegram_id, type="private")
        await repo.rate(session, sample_id=first.id, user_id=fan.id, score=UP)
        await repo.rate(session, sample_id=second.id, user_id=fan.id, score=DOWN)
        await repo.rate(session, sample_id=second.id, user_id=author.id, score=UP)
        await session.commit()

        stats = await repo.user_stats(session, user_id=author.id)
        assert (stats.samples, stats.ratings_given, stats.up_received, stats.down_received) == (2, 1, 2, 1)
        assert stats.first_sample_at is not None and stats.last_sample_at is not None
        assert stats.first_sample_at <= stats.last_sample_at
        fan_stats = await repo.user_stats(session, user_id=fan.id)
        assert (fan_stats.samples, fan_stats.ratings_given, fan_stats.last_sample_at) == (0, 2, None)

        admin = await repo.admin_stats(session)
        assert (admin.users, admin.samples, admin.delivered_samples, admin.samples_last_24h) == (2, 2, 1, 2)
        assert (admin.ratings, admin.up_votes, admin.down_votes) == (3, 2, 1)
        assert admin.chats == {"group": 1, "private": 1}
        by_model = {m.model_name: m for m in admin.models}
        assert (
            by_model["zh-word"].samples,
            by_model["zh-word"].up_votes,
            by_model["zh-word"].down_votes,
        ) == (1, 1, 1)
        assert by_model["zh-word"].avg_generation_ms == 30
        later = await repo.admin_stats(session, now=datetime.now(UTC) + timedelta(days=2))
        assert later.samples_last_24h == 0


async def test_forget_user(db: Database) -> None:
    async with db.sessions() as session:
        leaver, group, theirs = await make_world(session)
        private = await repo.get_or_create_chat(session, telegram_id=leaver.telegram_id, type="private")
        in_private = await make_sample(session, user=leaver, chat=private, shared=True)
        stayer = await make_user(session)
        kept = await make_sample(session, user=stayer, chat=group)
        await repo.rate(session, sample_id=kept.id, user_id=leaver.id, score=UP)
        await repo.rate(session, sample_id=kept.id, user_id=stayer.id, score=UP)
        await repo.rate(session, sample_id=theirs.id, user_id=stayer.id, score=DOWN)
        await repo.rate(session, sample_id=in_private.id, user_id=leaver.id, score=UP)
        await session.commit()
        kept_id, leaver_tg, leaver_id = kept.id, leaver.telegram_id, leaver.id

    async with db.sessions() as session:
        result = await repo.forget_user(session, telegram_id=leaver_tg)
        await session.commit()
        assert result == repo.ForgetResult(found=True, samples_deleted=2, ratings_deleted=2, chats_deleted=1)
        assert await repo.get_user(session, telegram_id=leaver_tg) is None
        assert await repo.get_chat(session, telegram_id=leaver_tg) is None
        assert await repo.get_chat(session, telegram_id=group.telegram_id) is not None
        assert await session.scalar(select(func.count()).where(StoredSample.user_id == leaver_id)) == 0
        assert await session.scalar(select(func.count()).where(Rating.user_id == leaver_id)) == 0
        # The stayer's sample lost the leaver's vote, and its counter says so.
        assert await repo.get_votes(session, sample_id=kept_id) == repo.Votes(1, 0)
        assert await session.scalar(select(func.count()).select_from(Rating)) == 1
        again = await repo.forget_user(session, telegram_id=leaver_tg)
        assert again == repo.ForgetResult(found=False, samples_deleted=0, ratings_deleted=0, chats_deleted=0)


async def test_ids_are_never_reused_after_forget(db: Database) -> None:
    """Issue 23: on SQLite the next sample took a forgotten one's id, and an old message's
    button then named it."""
    async with db.sessions() as session:
        leaver, group, _ = await make_world(session)
        newest = await make_sample(session, user=leaver, chat=group)
        await session.commit()
        old_id, leaver_tg = newest.id, leaver.telegram_id
    async with db.sessions() as session:
        await repo.forget_user(session, telegram_id=leaver_tg)
        await session.commit()
    async with db.sessions() as session:
        stayer = await make_user(session)
        chat = await session.get(Chat, group.id)
        assert chat is not None
        later = await make_sample(session, user=stayer, chat=chat)
        await session.commit()
        assert later.id > old_id


async def test_forget_keeps_other_peoples_games_and_duels_and_redacts_copied_seeds(db: Database) -> None:
    """Issue 24, item 6: Alice's forget used to delete Bob's guesses and duel votes (CASCADE)
    and leave her seed in Bob's 🔁 sample and 🆚 duel."""
    from bot.db.models import Duel, DuelVote, Game, Guess
    from bot.db.outcomes import Outcome
    from bot.db.repository import duels as dr
    from bot.db.repository import games

    async with db.sessions() as session:
        alice, group, hers = await make_world(session)
        bob = await make_user(session)
        copy = await make_sample(session, user=bob, chat=group, seed=hers.seed, seed_user_id=alice.id)
        game = await make_game(session, chat=group, started_by=alice.id, model_name="m", seed="book")
        await games.guess(session, game_id=game.id, user_id=bob.id, choice="A")
        arm_a, arm_b = dr.Arm("m", 0.2), dr.Arm("m", 1.0)
        own_duel = await dr.record_duel(
            session,
            user_id=alice.id,
            chat_id=group.id,
            private=False,
            seed="hers",
            length=20,
            a=dr.Side(arm_a, "1", 1, "a"),
            b=dr.Side(arm_b, "1", 2, "b"),
            update_id=None,
        )
        copied_duel = await dr.record_duel(
            session,
            user_id=bob.id,
            chat_id=group.id,
            private=False,
            seed=hers.seed,
            length=20,
            a=dr.Side(arm_a, "1", 1, "a"),
            b=dr.Side(arm_b, "1", 2, "b"),
            update_id=None,
            seed_user_id=alice.id,
        )
        await dr.cast_vote(
            session, duel=own_duel, user_id=bob.id, outcome=Outcome.A, min_delay_s=0, daily_cap=5
        )
        await session.commit()
        ids = (copy.id, game.id, own_duel.id, copied_duel.id, alice.telegram_id)
    copy_id, game_id, own_duel_id, copied_duel_id, alice_tg = ids
    async with db.sessions() as session:
        await repo.forget_user(session, telegram_id=alice_tg)
        await session.commit()
    async with db.sessions() as session:
        kept_game = await session.get(Game, game_id)
        assert kept_game is not None and kept_game.started_by is None
        assert await session.scalar(select(func.count()).select_from(Guess)) == 1
        assert await session.scalar(select(func.count()).select_from(DuelVote)) == 1
        bobs_copy = await session.get(StoredSample, copy_id)
        assert bobs_copy is not None and bobs_copy.seed == "" and bobs_copy.seed_user_id is None
        duel = await session.get(Duel, copied_duel_id)
        assert duel is not None and duel.seed == ""
        assert await session.get(Duel, own_duel_id) is not None


# A random click history: (rater index, action, score).
_clicks = st.lists(
    st.tuples(st.integers(0, 3), st.sampled_from(["rate", "toggle"]), st.sampled_from([UP, DOWN])),
    max_size=25,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(clicks=_clicks)
def test_counters_always_match_the_ratings(database_url: str, clicks: list[tuple[int, str, int]]) -> None:
    """Whatever the click history, the stored counters equal a model of it and the rows."""

    async def scenario() -> None:
        db = Database.from_url(database_url)
        try:
            async with db.engine.begin() as conn:
                await conn.run_sync(Rating.metadata.drop_all)
                await conn.run_sync(Rating.metadata.create_all)
            async with db.sessions() as session:
                _author, _chat, sample = await make_world(session)
                raters = [await make_user(session) for _ in range(4)]
                await session.commit()
            expected: dict[int, int] = {}
            for index, action, score in clicks:
                user_id = raters[index].id

                async def click(
                    session: AsyncSession, user_id: int = user_id, action: str = action, score: int = score
                ) -> repo.RatingState:
                    if action == "rate":
                        return await repo.rate(session, sample_id=sample.id, user_id=user_id, score=score)
                    return await repo.toggle_rating(
                        session, sample_id=sample.id, user_id=user_id, score=score
                    )

                state = await db.run(click)
                before = expected.get(user_id)
                after = score if action == "rate" else None if before == score else score
                if after is None:
                    expected.pop(user_id, None)
                else:
                    expected[user_id] = after
                assert state.score == after and state.changed == (after != before)
            want = repo.Votes(
                sum(v == UP for v in expected.values()), sum(v == DOWN for v in expected.values())
            )
            async with db.sessions() as session:
                assert await repo.get_votes(session, sample_id=sample.id) == want
                rows = (await session.execute(select(Rating.user_id, Rating.score))).all()
                assert dict((user_id, score) for user_id, score in rows) == expected
            async with db.engine.begin() as conn:
                await conn.run_sync(Rating.metadata.drop_all)
        finally:
            await db.dispose()

    asyncio.run(scenario())


async def test_concurrent_get_or_create_chat(db: Database) -> None:
    async def work(session: AsyncSession) -> int:
        return (await repo.get_or_create_chat(session, telegram_id=-9, type="group")).id

    ids = await asyncio.gather(*(db.run(work) for _ in range(20)))
    assert len(set(ids)) == 1
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Chat)) == 1


async def test_claim_update_once(db: Database) -> None:
    async with db.sessions() as session:
        assert await repo.claim_update(session, update_id=7)
        assert not await repo.claim_update(session, update_id=7)
        assert await repo.claim_update(session, update_id=8)
        await session.commit()

    # A claim made in a transaction that rolls back is not kept.
    async def failing(session: AsyncSession) -> None:
        assert await repo.claim_update(session, update_id=9)
        raise RuntimeError("handler failed after claiming")

    with pytest.raises(RuntimeError):
        await db.run(failing)
    async with db.sessions() as session:
        assert await repo.claim_update(session, update_id=9)


async def test_asker_rows_reads_an_update_its_user_and_chat_in_one_statement(db: Database) -> None:
    """Every update's first read: one SELECT for a stored user; a newcomer's adds the claim's."""
    async with db.sessions() as session:
        user = await make_user(session, telegram_id=31)
        group = await make_chat(session, telegram_id=-31, type="group")
        assert await repo.claim_update(session, update_id=500)
        assert await repo.claim_update(session, update_id=501)
        await session.commit()
    statements: list[str] = []

    def ids(row: User | Chat | None) -> int | None:
        return None if row is None else row.id

    def seen(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with db.sessions() as session:
            rows = await repo.asker_rows(session, user_telegram_id=31, chat_telegram_id=-31, update_id=499)
            assert (rows.handled, ids(rows.user), ids(rows.chat)) == (False, user.id, group.id)
            assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
            rows = await repo.asker_rows(session, user_telegram_id=31, chat_telegram_id=-31, update_id=500)
            assert rows.handled and ids(rows.user) == user.id
            rows = await repo.asker_rows(session, user_telegram_id=31, chat_telegram_id=-99, update_id=None)
            assert (rows.handled, ids(rows.user), rows.chat) == (False, user.id, None)  # an unknown chat
            rows = await repo.asker_rows(session, user_telegram_id=31, chat_telegram_id=None, update_id=None)
            assert (ids(rows.user), rows.chat) == (user.id, None)  # no chat (inline)
            statements.clear()
            rows = await repo.asker_rows(session, user_telegram_id=77, chat_telegram_id=77, update_id=501)
            assert (rows.handled, rows.user, rows.chat) == (True, None, None)  # handled, user forgotten
            assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 2
            rows = await repo.asker_rows(session, user_telegram_id=77, chat_telegram_id=77, update_id=502)
            assert (rows.handled, rows.user) == (False, None)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)


async def test_insert_first_creates_a_newcomer_in_one_statement_and_still_refreshes_a_known_row(
    db: Database,
) -> None:
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement.lstrip().split(None, 1)[0])

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with db.sessions() as session:
            user = await repo.get_or_create_user(
                session, telegram_id=41, display_name="New", insert_first=True
            )
            chat = await repo.get_or_create_chat(session, telegram_id=-41, type="group", insert_first=True)
            assert [s for s in statements if s in ("SELECT", "INSERT")] == ["INSERT", "INSERT"]
            await session.commit()
        # A read that found nothing can be stale (another update stored the row meanwhile): the
        # row found is then refreshed as usual.
        async with db.sessions() as session:
            again = await repo.get_or_create_user(
                session, telegram_id=41, display_name="Renamed", language_code="de", insert_first=True
            )
            same_chat = await repo.get_or_create_chat(
                session, telegram_id=-41, type="supergroup", title="T", insert_first=True
            )
            await session.commit()
        assert (again.id, again.display_name, again.language_code) == (user.id, "Renamed", "de")
        assert (same_chat.id, same_chat.type, same_chat.title) == (chat.id, "supergroup", "T")
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)


async def test_concurrent_duplicate_updates_apply_once(db: Database) -> None:
    """The same toggle delivered 10 times at once flips the rating exactly once."""
    async with db.sessions() as session:
        _author, _chat, sample = await make_world(session)
        await session.commit()

    async def handle(session: AsyncSession) -> bool:
        if not await repo.claim_update(session, update_id=4242):
            return False
        user = await repo.get_or_create_user(session, telegram_id=99)
        await repo.toggle_rating(session, sample_id=sample.id, user_id=user.id, score=UP)
        return True

    handled = await asyncio.gather(*(db.run(handle) for _ in range(10)))
    assert sorted(handled) == [False] * 9 + [True]
    async with db.sessions() as session:
        assert await repo.get_votes(session, sample_id=sample.id) == repo.Votes(1, 0)


async def test_prune_processed_updates(db: Database) -> None:
    async with db.sessions() as session:
        for update_id in (1, 2, 3):
            assert await repo.claim_update(session, update_id=update_id)
        later = datetime.now(UTC) + timedelta(days=3)
        assert await repo.prune_processed_updates(session, now=later) == 3
        assert await repo.claim_update(session, update_id=1)  # claimable again after pruning
        assert await repo.prune_processed_updates(session) == 0


async def test_a_length_set_on_a_char_model_is_not_read_as_words(db: Database) -> None:
    """Issue 23: 400 characters on a char model, then a word model: the word default, not 400 words."""
    async with db.sessions() as session:
        user = await make_user(session)
        await repo.set_user_length(session, user_id=user.id, level="char", length=400)
        await repo.set_user_model(session, user_id=user.id, model_name="en-word")
        settings = repo.resolve_settings(user, None, default_model="en-char")
        assert settings.model_name == "en-word"
        assert settings.length_for("word") is None
        assert effective_length(settings.length_for("word"), "word") == default_length("word") == 100
        # Back on the char model, the 400 characters are still there.
        assert settings.length_for("char") == 400
