"""Everything handlers read or write, as keyword-only functions taking the session explicitly.

Functions never commit: the caller owns the transaction (normally one
``Database.run(lambda session: ...)`` per update, which commits and retries on transient
errors). Ids named ``user_id``/``chat_id``/``sample_id`` are this database's own primary keys;
Telegram's ids are always called ``telegram_id``/``message_id``.

Ratings and vote counts: ``samples.up_votes``/``down_votes`` mirror the ``ratings`` rows so
a keyboard reads them with one primary-key lookup. Every rating change first locks the sample
row (``FOR NO KEY UPDATE`` on PostgreSQL; SQLite's write lock already serialises writers),
then changes the rating with an upsert and recounts that sample's ratings, all in one
transaction. Concurrent clicks on one sample therefore queue on the lock, never create a
second row (the primary key is (sample_id, user_id) and the write is INSERT .. ON CONFLICT)
and never leave the counters out of step. A reaction changes a rating through the very same
path (``rate_by_reaction``); each rating remembers whether a button or a reaction gave it.

The functions live in one module per concept (users, samples, ratings, stats, updates);
import them from here: ``from bot.db import repository as repo``.
"""

from bot.db.repository.base import (
    UNSET,
    NotFound,
    StorageError,
    check_length,
    check_model_name,
    check_score,
    check_temperature_setting,
)
from bot.db.repository.ratings import (
    RatingState,
    Votes,
    get_votes,
    rate,
    rate_by_reaction,
    set_anonymous_reactions,
    toggle_rating,
)
from bot.db.repository.samples import (
    Pending,
    SampleOrigin,
    count_pending_between,
    create_inline_offer,
    get_sample,
    get_sample_by_update,
    get_sample_origin,
    is_pending,
    mark_send_uncertain,
    pending_samples,
    pending_samples_of_update,
    record_sample,
    samples_of_message,
    set_sample_message_id,
    set_shared,
    take_inline_offer,
)
from bot.db.repository.stats import (
    AdminStats,
    ModelStats,
    UserStats,
    admin_stats,
    pick_unrated_sample,
    top_samples,
    user_stats,
)
from bot.db.repository.updates import claim_update, prune_processed_updates, update_handled
from bot.db.repository.users import (
    ForgetResult,
    GenerationSettings,
    forget_user,
    get_chat,
    get_or_create_chat,
    get_or_create_user,
    get_user,
    lock_chat,
    resolve_settings,
    set_group_defaults,
    set_user_length,
    set_user_model,
    set_user_temperature,
)

__all__ = [
    "UNSET",
    "AdminStats",
    "ForgetResult",
    "GenerationSettings",
    "ModelStats",
    "NotFound",
    "Pending",
    "RatingState",
    "SampleOrigin",
    "StorageError",
    "UserStats",
    "Votes",
    "admin_stats",
    "check_length",
    "check_model_name",
    "check_score",
    "check_temperature_setting",
    "claim_update",
    "count_pending_between",
    "create_inline_offer",
    "forget_user",
    "get_chat",
    "get_or_create_chat",
    "get_or_create_user",
    "get_sample",
    "get_sample_by_update",
    "get_sample_origin",
    "get_user",
    "get_votes",
    "is_pending",
    "lock_chat",
    "mark_send_uncertain",
    "pending_samples",
    "pending_samples_of_update",
    "pick_unrated_sample",
    "prune_processed_updates",
    "rate",
    "rate_by_reaction",
    "record_sample",
    "resolve_settings",
    "samples_of_message",
    "set_anonymous_reactions",
    "set_group_defaults",
    "set_sample_message_id",
    "set_shared",
    "set_user_length",
    "set_user_model",
    "set_user_temperature",
    "take_inline_offer",
    "toggle_rating",
    "top_samples",
    "update_handled",
    "user_stats",
]
