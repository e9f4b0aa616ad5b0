"""build_application(): the python-telegram-bot Application with every handler wired."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from telegram import BotCommand, BotCommandScopeDefault, Update
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChosenInlineResultHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    MessageReactionHandler,
    TypeHandler,
    filters,
)

from bot import keyboards as kb
from bot.calls import answer_press, reply_html
from bot.db.database import Database
from bot.delivery import Outbox
from bot.generation import GenerationService, load_models
from bot.handlers import (
    acrostic,
    duels,
    game,
    generate,
    group_defaults,
    inline,
    leaderboard,
    presses,
    ratings,
    reactions,
    start,
)
from bot.handlers import settings as settings_handlers
from bot.handlers.game_timer import GameTimer
from bot.logs import update_context, user_hash
from bot.model_watch import ModelWatcher
from bot.novelty import NoveltyService
from bot.press_order import PressesInOrder
from bot.pruning import Pruner
from bot.services import SERVICES_KEY, Services, services_of
from bot.settings import Settings
from bot.shared_limits import SharedLimits
from bot.telegram_http import AiohttpRequest
from bot.texts import COMMANDS, text
from bot.user_limits import Limits, UserLimits
from bot.who import lang_of
from core.bundle import Bundle
from core.lstm_step import threads as kernel_threads

log = logging.getLogger(__name__)

METRICS_KEY = "metrics_runner"
OUTBOX_KEY = "outbox"
PRUNER_KEY = "pruner"
WATCHER_KEY = "model_watcher"
# How long start-up waits for the registry's champions before serving MODEL_DIR's meanwhile.
START_POLL_S = 60.0


class _NoRetryAfterNoise(logging.Filter):
    """AIORateLimiter only paces here (max_retries=0: telegram_call is the one retry layer), and
    logs every 429 it hands on as an error with a traceback; telegram_call logs the wait."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Rate limit hit after maximum of 0 retries")


logging.getLogger("telegram.ext.AIORateLimiter").addFilter(_NoRetryAfterNoise())
# Only what the bot handles: Telegram then does not even send the rest. Reactions must be
# named explicitly (Telegram leaves them out by default) and reach a bot only in private chats
# and in groups where it is an administrator.
ALLOWED_UPDATES = [
    Update.MESSAGE,
    Update.CALLBACK_QUERY,
    Update.INLINE_QUERY,
    Update.CHOSEN_INLINE_RESULT,
    Update.MESSAGE_REACTION,
    Update.MESSAGE_REACTION_COUNT,
]


def file_base_url(api_base_url: str) -> str:
    """Telegram's file URL for a given API base URL ("/bot" -> "/file/bot")."""
    head, _, _ = api_base_url.rstrip("/").rpartition("/")
    return f"{head}/file/bot"


def limits_for(settings: Settings, db: Database) -> Limits:
    """PostgreSQL may have several replicas: the limits live there, shared. SQLite is one
    process: its limits stay in memory (no database round trip per message)."""
    if db.dialect == "postgresql":
        return SharedLimits(
            db,
            settings.rate_limit_per_minute,
            replica=settings.replica_id,
            lease_s=settings.limit_lease_s,
        )
    return UserLimits(settings.rate_limit_per_minute)


def build_application(settings: Settings, bundles: dict[str, Bundle] | None = None) -> Application:  # type: ignore[type-arg]
    """The bot: models loaded now (a broken default model stops start-up here), services in post_init."""
    if settings.telegram_token is None:
        raise ValueError("TELEGRAM_TOKEN is not set")
    if bundles is None:
        bundles = load_models(settings.model_dir, settings.default_model, settings.models)
    loaded = bundles
    # Handed over once: a closure keeping them would keep a replaced model's weights forever.
    handover = [loaded]
    del loaded, bundles

    async def post_init(app: Application) -> None:  # type: ignore[type-arg]
        bundles = handover.pop()
        kernel_threads(settings.generation_threads)
        generation = GenerationService(
            bundles,
            default=settings.default_model,
            queue_max=settings.max_queue,
            batch_max=settings.batch_max,
            cache_dir=settings.cache_dir,
        )
        generation.start()
        novelty = NoveltyService(bundles, settings.cache_dir)
        novelty.start()  # books tokenized in a thread: the badge appears once ready
        await generation.ready()  # tokenizers and kernel warmed in a thread before polling starts
        db = Database.from_url(settings.database_url)
        services = Services(
            settings=settings,
            db=db,
            generation=generation,
            limits=limits_for(settings, db),
            novelty=novelty,
        )
        app.bot_data[SERVICES_KEY] = services
        # The model registry: its champions replace MODEL_DIR's before the first update is
        # handled, then every MODEL_POLL_S seconds new versions are swapped in (hot reload).
        watcher = ModelWatcher(
            db,
            generation,
            cache_dir=settings.model_cache_dir,
            poll_s=settings.model_poll_s,
            model_dir={name: bundle.path for name, bundle in bundles.items()},
            novelty=novelty,
        )
        del bundles
        if settings.model_poll_s > 0:
            try:  # bounded: a database that does not answer must not hold the start for minutes
                await asyncio.wait_for(watcher.poll(), START_POLL_S)
            except TimeoutError:
                log.warning("no answer from the model registry in %g s: serving MODEL_DIR", START_POLL_S)
            watcher.start()
        app.bot_data[WATCHER_KEY] = watcher
        # Samples a previous run stored but did not send go out now, then every few seconds.
        outbox = Outbox(app.bot, services)
        outbox.start()
        app.bot_data[OUTBOX_KEY] = outbox
        # "Real or dream?": reveals games that ran out while the bot was down, then keeps time.
        timer = GameTimer(app.bot, services)
        timer.start()
        app.bot_data[game.TIMER_KEY] = timer
        # Inline offers nothing was chosen from are deleted after a while (every few minutes).
        pruner = Pruner(db)
        pruner.start()
        app.bot_data[PRUNER_KEY] = pruner
        if settings.metrics_port:
            # Imported only here: aiohttp and prometheus_client were ~10% of every start, and
            # most deployments serve no metrics (METRICS_PORT=0, the default).
            from bot.metrics import start_metrics_server

            app.bot_data[METRICS_KEY] = await start_metrics_server(
                services, settings.webhook_listen, settings.metrics_port
            )
        await _set_commands(app)

    async def post_shutdown(app: Application) -> None:  # type: ignore[type-arg]
        runner = app.bot_data.pop(METRICS_KEY, None)
        if runner is not None:
            await runner.cleanup()
        pruner: Pruner | None = app.bot_data.pop(PRUNER_KEY, None)
        if pruner is not None:
            await pruner.stop()
        watcher: ModelWatcher | None = app.bot_data.pop(WATCHER_KEY, None)
        if watcher is not None:
            await watcher.stop()
        timer: GameTimer | None = app.bot_data.pop(game.TIMER_KEY, None)
        if timer is not None:
            await timer.stop()
        outbox: Outbox | None = app.bot_data.pop(OUTBOX_KEY, None)
        if outbox is not None:
            await outbox.stop()
        services: Services | None = app.bot_data.get(SERVICES_KEY)
        if services is not None:
            await services.generation.close()
            await services.novelty.close()
            await services.db.dispose()

    app = (
        ApplicationBuilder()
        .token(settings.telegram_token.get_secret_value())
        .base_url(settings.telegram_api_base_url)
        .base_file_url(file_base_url(settings.telegram_api_base_url))
        # aiohttp, not PTB's default httpx: a send costs a fraction of the CPU (bot/telegram_http.py).
        .request(AiohttpRequest())
        .get_updates_request(AiohttpRequest(connection_pool_size=1))
        # Paces sends to Telegram's limits; retries are telegram_call's alone (docs/reliability.md).
        .rate_limiter(AIORateLimiter(max_retries=0))
        # Updates are handled concurrently, so a long generation never delays another user;
        # one user's button presses take turns, in the order they arrived.
        .concurrent_updates(PressesInOrder())
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    add_handlers(app)
    return app


# Every kind of button and the one function that handles it (presses.dispatcher refuses to
# start when a kind has none).
PRESS_HANDLERS: dict[type, presses.PressHandler] = {
    kb.Rate: ratings.on_rate_press,
    kb.Again: generate.on_again_press,
    kb.Share: ratings.on_share_press,
    kb.NextToRate: ratings.on_next_press,
    kb.SetTemperature: settings_handlers.on_temperature_press,
    kb.SetModel: settings_handlers.on_model_press,
    kb.Forget: ratings.on_forget_press,
    kb.DuelVote: duels.on_vote_press,
    kb.StartDuel: duels.on_start_duel_press,
    kb.GameVote: game.on_vote_press,
}


def add_handlers(app: Application) -> None:  # type: ignore[type-arg]
    """Wire every command, message and button handler, and the error handler."""
    # Runs first for every update: tags the log records of this update's task.
    app.add_handler(TypeHandler(Update, tag_update), group=-1)
    message_only = filters.UpdateType.MESSAGE  # edited messages and channel posts are ignored
    commands = [
        (["start"], start.on_start),
        (["help"], start.on_help),
        (["gen", "generate"], generate.on_gen),
        (["temp"], settings_handlers.on_temp),
        (["length"], settings_handlers.on_length),
        (["model"], settings_handlers.on_model),
        (["settings"], settings_handlers.on_settings),
        (["compare"], generate.on_compare),
        (["rate"], ratings.on_rate),
        (["top"], ratings.on_top),
        (["mystats"], ratings.on_mystats),
        (["forget"], ratings.on_forget),
        (["groupdefault"], group_defaults.on_group_default),
        (["stats"], ratings.on_stats),
        (["game"], game.on_game),
        (["scores"], game.on_scores),
        (["fooled"], game.on_fooled),
        (["duel"], duels.on_duel),
        (["leaderboard"], leaderboard.on_leaderboard),
        (["acrostic"], acrostic.on_acrostic),
    ]
    for names, callback in commands:
        app.add_handler(CommandHandler(names, callback, filters=message_only))
    private, groups = filters.ChatType.PRIVATE, filters.ChatType.GROUPS
    app.add_handler(
        MessageHandler(private & message_only & filters.TEXT & ~filters.COMMAND, generate.on_private_text)
    )
    app.add_handler(
        MessageHandler(groups & message_only & filters.TEXT & ~filters.COMMAND, generate.on_group_text)
    )
    app.add_handler(MessageHandler(private & message_only & filters.COMMAND, start.on_unknown))
    app.add_handler(MessageHandler(private & message_only & ~filters.TEXT, generate.on_non_text))
    app.add_handler(CallbackQueryHandler(presses.dispatcher(PRESS_HANDLERS)))
    app.add_handler(InlineQueryHandler(inline.on_inline_query))
    app.add_handler(ChosenInlineResultHandler(inline.on_chosen))
    app.add_handler(
        MessageReactionHandler(
            reactions.on_reaction, message_reaction_types=MessageReactionHandler.MESSAGE_REACTION_UPDATED
        )
    )
    app.add_handler(
        MessageReactionHandler(
            reactions.on_reaction_count,
            message_reaction_types=MessageReactionHandler.MESSAGE_REACTION_COUNT_UPDATED,
        )
    )
    app.add_error_handler(on_error)


async def tag_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Put the update id and a hash of the user id into this task's logging context."""
    user = update.effective_user
    update_context.set(
        {"update_id": update.update_id, "user": user_hash(user.id, str(context.bot.id)) if user else None}
    )


async def _set_commands(app: Application) -> None:  # type: ignore[type-arg]
    """The command menu, in English and (for Chinese clients) in Chinese."""
    try:
        for lang, code in (("en", None), ("zh", "zh")):
            commands = [BotCommand(name, about) for name, about in COMMANDS[lang]]
            await app.bot.set_my_commands(commands, scope=BotCommandScopeDefault(), language_code=code)
    except TelegramError as exc:
        log.warning("could not set the command menu: %s", exc)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the failure (redacted by the logging filter) and tell the user, without details."""
    log.error("error while handling an update", exc_info=context.error)
    with contextlib.suppress(KeyError, AttributeError):
        services_of(context).counters.errors += 1
    if isinstance(update, Update):
        if update.callback_query is not None:
            # The press dispatcher answered it already (a repeated answer is dropped quietly).
            await answer_press(update.callback_query, text(lang_of(update), "unavailable"))
        elif update.effective_message is not None:
            await reply_html(update.effective_message, text(lang_of(update), "unavailable"))
