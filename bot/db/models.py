"""Every table the bot stores, as typed SQLAlchemy 2 ORM models.

Users, chats, generated samples and the ratings people give them. The database itself
enforces what the code assumes (unique Telegram ids, one rating per user per sample,
value ranges, cascading deletes), so a bug elsewhere cannot store nonsense.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from bot.db.outcomes import Outcome
from core.limits import MAX_LENGTH, MAX_TEMPERATURE, MIN_LENGTH, MIN_TEMPERATURE

CHAT_TYPES: tuple[str, ...] = ("private", "group", "supergroup", "channel")
UP, DOWN = 1, -1
# Where a user's rating came from: a 👍/👎 button or a message reaction (bot/reactions.py).
BUTTON, REACTION = "button", "reaction"
RATING_SOURCES: tuple[str, ...] = (BUTTON, REACTION)

# Deterministic constraint names, so that migrations can refer to them on every backend
# (SQLite batch mode in particular needs named constraints to alter them).
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the backend.

    PostgreSQL keeps the zone (timestamptz); SQLite has no zone support and would hand back
    naive datetimes, so values are stored as naive UTC there and re-tagged when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware value")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _temperature_check(column: str, *, nullable: bool = False) -> str:
    rule = f"{column} >= {MIN_TEMPERATURE} AND {column} <= {MAX_TEMPERATURE}"
    return f"{column} IS NULL OR ({rule})" if nullable else rule


def _length_check(column: str, *, nullable: bool = False) -> str:
    rule = f"{column} >= {MIN_LENGTH} AND {column} <= {MAX_LENGTH}"
    return f"{column} IS NULL OR ({rule})" if nullable else rule


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class TimestampMixin:
    """created_at / updated_at, set by the application (microseconds) with a server fallback."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())


class User(TimestampMixin, Base):
    """A Telegram user and their generation settings."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(_temperature_check("temperature", nullable=True), name="temperature_range"),
        CheckConstraint(_length_check("length_char", nullable=True), name="length_char_range"),
        CheckConstraint(_length_check("length_word", nullable=True), name="length_word_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    display_name: Mapped[str | None] = mapped_column(String(256))
    language_code: Mapped[str | None] = mapped_column(String(16))
    # None means "not chosen": the group's default where a group admin set one, else the
    # bot's (DEFAULT_TEMPERATURE; for the length, the model level's default).
    temperature: Mapped[float | None] = mapped_column(Float)
    # None means "the bot's default model", so changing the default reaches everyone.
    model_name: Mapped[str | None] = mapped_column(String(128))
    # A length per model level (migration 0008): characters and words are different units, so
    # switching models never reinterprets a number. None: the group's or the level's default.
    # Last in the table, where the migration adds them.
    length_char: Mapped[int | None] = mapped_column(Integer, sort_order=1)
    length_word: Mapped[int | None] = mapped_column(Integer, sort_order=1)

    samples: Mapped[list[StoredSample]] = relationship(
        back_populates="user", passive_deletes=True, lazy="raise", foreign_keys="StoredSample.user_id"
    )

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, telegram_id={self.telegram_id!r})"


class Chat(TimestampMixin, Base):
    """A chat samples were made in, with the defaults a group admin set (/groupdefault)."""

    __tablename__ = "chats"
    __table_args__ = (
        CheckConstraint("type IN (" + ", ".join(f"'{kind}'" for kind in CHAT_TYPES) + ")", name="type_known"),
        CheckConstraint(_temperature_check("temperature", nullable=True), name="temperature_range"),
        CheckConstraint(_length_check("length_char", nullable=True), name="length_char_range"),
        CheckConstraint(_length_check("length_word", nullable=True), name="length_word_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    type: Mapped[str] = mapped_column(String(16))
    title: Mapped[str | None] = mapped_column(String(256))
    # A group's defaults, for members who never chose their own; NULL: the bot's defaults.
    temperature: Mapped[float | None] = mapped_column(Float)
    model_name: Mapped[str | None] = mapped_column(String(128))
    length_char: Mapped[int | None] = mapped_column(Integer, sort_order=1)  # as users'
    length_word: Mapped[int | None] = mapped_column(Integer, sort_order=1)

    samples: Mapped[list[StoredSample]] = relationship(
        back_populates="chat", passive_deletes=True, lazy="raise"
    )

    def __repr__(self) -> str:
        return f"Chat(id={self.id!r}, telegram_id={self.telegram_id!r}, type={self.type!r})"


class StoredSample(Base):
    """One generated text with every setting needed to reproduce it, plus its vote counts.

    ``up_votes``/``down_votes`` are denormalised from ``ratings`` so that a message's keyboard
    reads them with one primary-key lookup; the repository keeps them in step inside the same
    transaction as the rating change, holding the sample's row lock.
    """

    __tablename__ = "samples"
    __table_args__ = (
        CheckConstraint(_temperature_check("temperature"), name="temperature_range"),
        CheckConstraint(_length_check("length"), name="length_range"),
        CheckConstraint("generation_ms >= 0", name="generation_ms_nonnegative"),
        CheckConstraint("up_votes >= 0 AND down_votes >= 0", name="votes_nonnegative"),
        # Hot reads: a user's samples (stats, /forget), a chat's and a model's top lists, and
        # the export's --since filter.
        Index("ix_samples_user_id_created_at", "user_id", "created_at"),
        Index("ix_samples_chat_id_created_at", "chat_id", "created_at"),
        Index("ix_samples_model_name_created_at", "model_name", "created_at"),
        Index("ix_samples_created_at", "created_at"),
        Index("ix_samples_update_id", "update_id"),
        # The outbox's scan: undelivered samples, oldest first.
        Index("ix_samples_delivered_created_at", "delivered", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"))
    seed: Mapped[str] = mapped_column(Text)  # the user's text, as sent
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    temperature: Mapped[float] = mapped_column(Float)
    length: Mapped[int] = mapped_column(Integer)
    rng_seed: Mapped[int | None] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text)  # what the model generated after the seed
    generation_ms: Mapped[int] = mapped_column(Integer)
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    # The Telegram update that asked for it: a redelivered update finds its sample instead of
    # generating again. Not unique (one update may yield several samples).
    update_id: Mapped[int | None] = mapped_column(BigInteger)
    delivered: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    up_votes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    down_votes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    # Added by migration 0002 (kept last so a migrated table's column order matches).
    # A send timed out (or the connection broke after the request went out): Telegram may have
    # delivered it, so the outbox must not send it again. See docs/reliability.md.
    send_uncertain: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Sent through inline mode: button presses then carry this id instead of a message.
    inline_message_id: Mapped[str | None] = mapped_column(String(256))
    # Visible only in the chat it was made in, unless its author shares it (/rate, /top).
    shared: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Added by migration 0005: the longest run copied verbatim from the model's training text
    # (in tokens) and the share of the sample's 8-grams absent from it; NULL: not checked.
    longest_copied: Mapped[int | None] = mapped_column(Integer)
    new_ngram_share: Mapped[float | None] = mapped_column(Float)
    # Whose text the seed is when it was copied from another user's sample (🔁 on a shared
    # one): /forget redacts it here too. Last in the table, where migration 0009 adds it.
    seed_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), sort_order=1
    )
    # An acrostic poem's head characters and line length ("新年快乐|7"; migration 0014): its
    # seed is only a newline, so 🔁 and a resend rebuild the poem's form from this.
    acrostic: Mapped[str | None] = mapped_column(String(40), sort_order=2)
    # The count shown under the sample (migration 0015): the finished text's characters or words,
    # where `length` is what was asked for; NULL for samples stored before (shown as `length`).
    shown_length: Mapped[int | None] = mapped_column(Integer, sort_order=3)

    user: Mapped[User] = relationship(back_populates="samples", lazy="raise", foreign_keys=[user_id])
    chat: Mapped[Chat] = relationship(back_populates="samples", lazy="raise")

    def __repr__(self) -> str:
        return f"StoredSample(id={self.id!r}, model={self.model_name!r}, user_id={self.user_id!r})"


class Rating(Base):
    """One user's vote on one sample: +1 or -1. Withdrawing a vote deletes the row.

    ``source`` is what last changed the score, a button or a reaction: removing a reaction
    withdraws the rating only while the rating is that reaction's (migration 0012).
    """

    __tablename__ = "ratings"
    __table_args__ = (
        CheckConstraint(f"score IN ({DOWN}, {UP})", name="score_up_or_down"),
        CheckConstraint(
            "source IN (" + ", ".join(f"'{s}'" for s in RATING_SOURCES) + ")", name="source_known"
        ),
        # The primary key (sample_id, user_id) serves per-sample reads; this one serves
        # per-user reads (stats, /forget, "what have I not rated yet").
        Index("ix_ratings_user_id", "user_id"),
    )

    # The composite primary key is the "one rating per user per sample" rule.
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    score: Mapped[int] = mapped_column(SmallInteger)
    rated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    source: Mapped[str] = mapped_column(String(8), default=BUTTON, server_default=BUTTON)

    def __repr__(self) -> str:
        return f"Rating(sample={self.sample_id!r}, user={self.user_id!r}, score={self.score!r})"


class AnonymousReactions(Base):
    """A sample's anonymous reactions (a channel's, or where Telegram hides who reacted), as
    Telegram last counted them: likes and dislikes by the mapping in bot/reactions.py. Counts
    only: nobody's rating, so not in ``up_votes``/``down_votes`` (migration 0012)."""

    __tablename__ = "anonymous_reactions"
    __table_args__ = (CheckConstraint("likes >= 0 AND dislikes >= 0", name="counts_nonnegative"),)

    sample_id: Mapped[int] = mapped_column(
        ForeignKey("samples.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    likes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    dislikes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When Telegram counted them (the update's date): an older count never replaces a newer one.
    counted_at: Mapped[datetime] = mapped_column()

    def __repr__(self) -> str:
        counts = f"likes={self.likes!r}, dislikes={self.dislikes!r}"
        return f"AnonymousReactions(sample={self.sample_id!r}, {counts})"


class ProcessedUpdate(Base):
    """A Telegram update already handled, claimed in the same transaction as its effect.

    Telegram redelivers updates the bot did not acknowledge (e.g. after a crash); a toggle
    applied twice would undo itself, so handlers claim the update id first and skip it when
    the claim fails. Rows older than a couple of days are pruned: Telegram keeps undelivered
    updates for at most 24 hours.
    """

    __tablename__ = "processed_updates"
    __table_args__ = (Index("ix_processed_updates_handled_at", "handled_at"),)

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    handled_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    def __repr__(self) -> str:
        return f"ProcessedUpdate(update_id={self.update_id!r})"


class Game(Base):
    """One round of "Real or dream?": a held-out passage's seed, its real ending and the model's.

    `deadline` is the source of truth for the timer: a game whose deadline passed while the bot
    was down is revealed at start. One open game per chat (revealed_at IS NULL) is enforced by
    the handler under the chat's row; the partial index keeps "the open game" a cheap lookup.
    """

    __tablename__ = "games"
    __table_args__ = (
        CheckConstraint("real_is IN ('A', 'B')", name="real_is_a_or_b"),
        CheckConstraint(_temperature_check("temperature"), name="temperature_range"),
        Index("ix_games_chat_id_revealed_at", "chat_id", "revealed_at"),
        Index("ix_games_revealed_at_deadline", "revealed_at", "deadline"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"))
    # SET NULL: a forgotten starter's games keep the other players' guesses (migration 0009).
    started_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    temperature: Mapped[float] = mapped_column(Float)
    seed: Mapped[str] = mapped_column(Text)
    real_text: Mapped[str] = mapped_column(Text)
    fake_text: Mapped[str] = mapped_column(Text)
    real_is: Mapped[str] = mapped_column(String(1))
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    lang: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    started_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    deadline: Mapped[datetime] = mapped_column()
    revealed_at: Mapped[datetime | None] = mapped_column()
    stopped: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The replica whose timer drives the game (countdown, reveal) until `timer_until`; another
    # one takes it over only when that lease ran out (migration 0011).
    timer_replica: Mapped[str | None] = mapped_column(String(200))
    timer_until: Mapped[datetime | None] = mapped_column()

    def __repr__(self) -> str:
        return f"Game(id={self.id!r}, chat_id={self.chat_id!r})"


class Guess(Base):
    """One player's vote in a game (the last press counts)."""

    __tablename__ = "game_guesses"
    __table_args__ = (
        CheckConstraint("choice IN ('A', 'B')", name="choice_a_or_b"),
        Index("ix_game_guesses_user_id", "user_id"),
    )

    game_id: Mapped[int] = mapped_column(ForeignKey("games.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    choice: Mapped[str] = mapped_column(String(1))
    guessed_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class InlineOffer(Base):
    """The continuations offered for one inline query; the chosen one becomes a sample.

    `candidates` is a JSON list of {"temperature", "text", "rng_seed"}: with `chosen` it is a
    preference (the chosen one over the others) an export can use.
    """

    __tablename__ = "inline_offers"
    __table_args__ = (Index("ix_inline_offers_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    seed: Mapped[str] = mapped_column(Text)
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    chosen: Mapped[int | None] = mapped_column(Integer)
    sample_id: Mapped[int | None] = mapped_column(ForeignKey("samples.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


# -- duels (migration 0003) ---------------------------------------------------------------------

DUEL_OUTCOMES: tuple[str, ...] = tuple(outcome.value for outcome in Outcome)  # ("a", "b", "tie", "bad")


class Duel(Base):
    """Two continuations of one seed by two arms (model, temperature), shown as A and B.

    Each side keeps what reproduces it (model, bundle version, temperature, rng seed) and its
    text. ``private`` says the duel was made in a private chat (exports leave those out unless
    asked). ``sent_at`` is when its message went out: votes faster than a reader could read
    are stored but not counted.
    """

    __tablename__ = "duels"
    __table_args__ = (
        CheckConstraint(_temperature_check("temperature_a"), name="temperature_a_range"),
        CheckConstraint(_temperature_check("temperature_b"), name="temperature_b_range"),
        CheckConstraint(_length_check("length"), name="length_range"),
        Index("ix_duels_chat_id_telegram_message_id", "chat_id", "telegram_message_id"),
        Index("ix_duels_update_id", "update_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # SET NULL: a forgotten starter's duels keep the other voters' votes (migration 0009).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"))
    private: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    seed: Mapped[str] = mapped_column(Text)
    length: Mapped[int] = mapped_column(Integer)
    model_a: Mapped[str] = mapped_column(String(128))
    version_a: Mapped[str] = mapped_column(String(64))
    temperature_a: Mapped[float] = mapped_column(Float)
    rng_seed_a: Mapped[int] = mapped_column(BigInteger)
    text_a: Mapped[str] = mapped_column(Text)
    model_b: Mapped[str] = mapped_column(String(128))
    version_b: Mapped[str] = mapped_column(String(64))
    temperature_b: Mapped[float] = mapped_column(Float)
    rng_seed_b: Mapped[int] = mapped_column(BigInteger)
    text_b: Mapped[str] = mapped_column(Text)
    update_id: Mapped[int | None] = mapped_column(BigInteger)
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    sent_at: Mapped[datetime | None] = mapped_column()
    seed_user_id: Mapped[int | None] = mapped_column(  # as samples' (🆚 on another's sample)
        ForeignKey("users.id", ondelete="SET NULL"), sort_order=1
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    def __repr__(self) -> str:
        a, b = f"{self.model_a}@{self.temperature_a}", f"{self.model_b}@{self.temperature_b}"
        return f"Duel(id={self.id!r}, a={a!r}, b={b!r})"


class DuelVote(Base):
    """One user's verdict on one duel (changeable); ``counted`` says whether it feeds the
    leaderboard (not when cast too fast, nor beyond the user's daily cap)."""

    __tablename__ = "duel_votes"
    __table_args__ = (
        CheckConstraint(
            "outcome IN (" + ", ".join(f"'{o}'" for o in DUEL_OUTCOMES) + ")", name="outcome_known"
        ),
        Index("ix_duel_votes_user_id_created_at", "user_id", "created_at"),
    )

    duel_id: Mapped[int] = mapped_column(ForeignKey("duels.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(8))
    counted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())

    def __repr__(self) -> str:
        return f"DuelVote(duel={self.duel_id!r}, user={self.user_id!r}, outcome={self.outcome!r})"


class SampleClaim(Base):
    """Which replica is sending a sample, and since when (several replicas, one outbox).

    The replica that stores a sample claims it in the same transaction; the outbox and a
    redelivered update on any replica send a pending sample only after taking over an expired
    claim (SEND_CLAIM_S: the sender died), in one atomic statement, so no two replicas send it.
    A sender that died after starting its send (``attempted_at``) may have delivered it: such a
    sample is marked ``send_uncertain`` instead, like a send that timed out.
    """

    __tablename__ = "sample_claims"

    sample_id: Mapped[int] = mapped_column(
        ForeignKey("samples.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    replica: Mapped[str] = mapped_column(String(200))
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    # Set just before the send: a holder that died after this may have delivered the sample.
    attempted_at: Mapped[datetime | None] = mapped_column()

    def __repr__(self) -> str:
        return f"SampleClaim(sample={self.sample_id!r}, replica={self.replica!r})"


class RequestSlot(Base):
    """A user's request in flight on some replica (at most one per user, shared by all replicas).

    Taken in one INSERT .. ON CONFLICT statement that succeeds only when there is no row or
    the row's lease ran out, so two replicas never both admit the same user. The lease bounds
    how long a replica killed mid-request blocks the user (LIMIT_LEASE_S).
    """

    __tablename__ = "request_slots"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    holder: Mapped[str] = mapped_column(String(200))
    # The Telegram update the slot was taken for: its redelivery may take the slot over.
    update_id: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column()

    def __repr__(self) -> str:
        return f"RequestSlot(user={self.user_id!r}, holder={self.holder!r})"


class LimitCharge(Base):
    """Generations made for a user at a moment: the per-minute window, shared by all replicas.

    Rows older than the window are deleted when the user is charged again (and pruned by
    age), so the table follows the active users.
    """

    __tablename__ = "limit_charges"
    __table_args__ = (
        Index("ix_limit_charges_user_id_charged_at", "user_id", "charged_at"),
        CheckConstraint("slots > 0", name="slots_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    charged_at: Mapped[datetime] = mapped_column()
    slots: Mapped[int] = mapped_column(Integer)

    def __repr__(self) -> str:
        return f"LimitCharge(user={self.user_id!r}, slots={self.slots!r})"


# -- the model registry (migration 0013) ---------------------------------------------------------

CHAMPION, CHALLENGER, RETIRED, REJECTED = "champion", "challenger", "retired", "rejected"
MODEL_ROLES: tuple[str, ...] = (CHAMPION, CHALLENGER, RETIRED, REJECTED)
LIVE_ROLES: tuple[str, ...] = (CHAMPION, CHALLENGER)  # the ones replicas load
_LIVE = "role IN (" + ", ".join(f"'{role}'" for role in LIVE_ROLES) + ")"


class ModelVersion(Base):
    """One version of a model in the registry, with its bundle packed in the row.

    The database holds the bundles so that replicas on other hosts load a new version without
    a shared volume. `version` is the bundle's own version (config.json), what samples store as
    `model_version`. At most one champion and one challenger per name: a partial unique index
    on both backends. `replaces` is the champion this one replaced when promoted, which a
    rollback brings back. `archive` is deferred: listing versions never reads the bundles.
    """

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
        CheckConstraint(
            "role IN (" + ", ".join(f"'{role}'" for role in MODEL_ROLES) + ")", name="role_known"
        ),
        CheckConstraint("archive_size >= 0", name="archive_size_nonnegative"),
        Index(
            "uq_model_versions_name_live_role",
            "name",
            "role",
            unique=True,
            sqlite_where=sql_text(_LIVE),
            postgresql_where=sql_text(_LIVE),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    parent_version: Mapped[str | None] = mapped_column(String(64))
    replaces: Mapped[str | None] = mapped_column(String(64))
    # What it was tuned on and how it fared: preference counts and time window, held-out loss,
    # copy rate, the gates and their results (written by whoever publishes it).
    lineage: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str | None] = mapped_column(Text)  # why it was retired or rejected
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    decided_at: Mapped[datetime | None] = mapped_column()  # when its role last changed
    archive_sha256: Mapped[str] = mapped_column(String(64))
    archive_size: Mapped[int] = mapped_column(Integer)
    archive: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)

    def __repr__(self) -> str:
        return f"ModelVersion(name={self.name!r}, version={self.version!r}, role={self.role!r})"


# Ids are never reused on SQLite (AUTOINCREMENT, migration 0010): without it SQLite hands a
# deleted row's id (after /forget) to the next row, and an old message's 👎 would rate it.
# PostgreSQL's sequences never reuse an id.
for _model in (User, Chat, StoredSample, Game, InlineOffer, Duel, ModelVersion):
    _table = _model.__table__
    assert isinstance(_table, Table)
    _table.dialect_options["sqlite"]["autoincrement"] = True
