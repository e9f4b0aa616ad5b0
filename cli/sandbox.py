"""`lstmbot sandbox`: the local Bot API server, its web chat, and the bot connected to it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import Any

from cli import CliError


def register(subparsers: Any) -> None:
    """Add the `sandbox` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "sandbox",
        help="chat with the bot in a browser, no Telegram token needed",
        description="Start a local Telegram Bot API server with a web chat page and the bot connected to it.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port for the page and the Bot API (default: 8080)")
    p.set_defaults(func=run)


async def _serve(host: str, port: int) -> None:
    from pydantic import SecretStr

    from bot.logs import configure_logging
    from cli.run import load_settings
    from migrations import upgrade
    from sandbox.server import DEFAULT_TOKEN, serve

    # The bot talks to the sandbox with the sandbox's own token, never a real one.
    settings = load_settings().model_copy(
        update={
            "telegram_token": SecretStr(DEFAULT_TOKEN),
            "telegram_api_base_url": f"http://127.0.0.1:{port}/bot",
        }
    )
    configure_logging(settings.log_level, [DEFAULT_TOKEN], fmt=settings.log_format)
    await asyncio.to_thread(upgrade, settings.database_url)
    _, runner = await serve(host, port)
    from bot.app import ALLOWED_UPDATES, build_application
    from core.bundle import BundleError

    try:
        app = build_application(settings)
    except BundleError as exc:
        await runner.cleanup()
        raise CliError(f"cannot load the default model: {exc}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with app:
        if app.post_init:
            await app.post_init(app)
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=10, allowed_updates=ALLOWED_UPDATES)
        print(f"lstmbot sandbox: open http://{host}:{port}/ in a browser (Ctrl-C to stop)", flush=True)
        await stop.wait()
        await app.updater.stop()
        await app.stop()
        if app.post_shutdown:
            await app.post_shutdown(app)
    await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    if not 0 < args.port < 65536:
        raise CliError("--port must be between 1 and 65535")
    try:
        asyncio.run(_serve(args.host, args.port))
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    return 0
