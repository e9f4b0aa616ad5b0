"""`lstmbot run`: start the Telegram bot (polling by default, webhook when WEBHOOK_URL is set)."""

from __future__ import annotations

import argparse
from typing import Any

from cli import CliError


def register(subparsers: Any) -> None:
    """Add the `run` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "run",
        help="start the Telegram bot",
        description="Start the bot with the settings from the environment (TELEGRAM_TOKEN, DATABASE_URL, "
        "MODEL_DIR, ...). Polling unless WEBHOOK_URL is set.",
    )
    p.set_defaults(func=run)


def load_settings() -> Any:
    """The settings, or a CliError that lists what is wrong without echoing any value."""
    from pydantic import ValidationError

    from bot.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper() or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise CliError(f"bad configuration: {problems}") from None


def run(args: argparse.Namespace) -> int:
    """Load models, connect, and serve until interrupted."""

    from bot.app import ALLOWED_UPDATES, build_application
    from bot.logs import configure_logging
    from core.bundle import BundleError
    from core.memory import limit_arenas

    limit_arenas(2)  # before any thread starts: a 512 MB machine cannot spare a heap per thread
    settings = load_settings()
    if settings.telegram_token is None:
        raise CliError(
            "TELEGRAM_TOKEN is not set. Get one from @BotFather, "
            "or try the bot locally with `lstmbot sandbox`."
        )
    secrets = [settings.telegram_token.get_secret_value()]
    if settings.webhook_secret:
        secrets.append(settings.webhook_secret.get_secret_value())
    configure_logging(settings.log_level, secrets, fmt=settings.log_format)
    try:
        app = build_application(settings)
    except BundleError as exc:
        raise CliError(f"cannot load the default model: {exc}") from None
    if settings.webhook_url:
        import asyncio

        from bot.webhook import serve_webhook

        assert settings.webhook_secret is not None  # enforced by Settings
        # Our own server: it answers Telegram only after the update was handled (bot/webhook.py).
        asyncio.run(
            serve_webhook(
                app,
                listen=settings.webhook_listen,
                port=settings.webhook_port,
                url=settings.webhook_url,
                secret=settings.webhook_secret.get_secret_value(),
                allowed_updates=ALLOWED_UPDATES,
            )
        )
    else:
        app.run_polling(allowed_updates=ALLOWED_UPDATES)
    return 0
