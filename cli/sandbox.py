"""`lstmbot sandbox`: the local Bot API server, its web chat, and the bot connected to it."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
from typing import Any

from cli import CliError

DEFAULT_PORT = 8080


def register(subparsers: Any) -> None:
    """Add the `sandbox` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "sandbox",
        help="chat with the bot in a browser, no Telegram token needed",
        description="Start a local Telegram Bot API server with a web chat page and the bot connected to it.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"port for the page and the Bot API (default: $SANDBOX_PORT, else {DEFAULT_PORT})",
    )
    p.set_defaults(func=run)


def choose_port(flag: int | None) -> int:
    """--port, else $SANDBOX_PORT, else 8080; a bad value is a friendly error."""
    if flag is not None:
        port, source = flag, "--port"
    else:
        raw = os.environ.get("SANDBOX_PORT", "").strip()
        if not raw:
            return DEFAULT_PORT
        try:
            port = int(raw)
        except ValueError:
            raise CliError(f"SANDBOX_PORT must be a port number (1-65535), not {raw!r}") from None
        source = "SANDBOX_PORT"
    if not 0 < port < 65536:
        raise CliError(f"{source} must be between 1 and 65535, not {port}")
    return port


def listen_error(host: str, port: int, exc: OSError) -> CliError:
    """What to tell a person whose sandbox cannot listen."""
    if exc.errno == errno.EADDRINUSE:
        return CliError(
            f"port {port} is already in use on {host} (another sandbox?); stop that program or pick "
            f"another port: --port 8081, SANDBOX_PORT=8081 or `make run PORT=8081`"
        )
    return CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


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
    # Listen first: a busy port is the likeliest mistake, and it should fail before anything else.
    try:
        _, runner = await serve(host, port)
    except OSError as exc:
        raise listen_error(host, port, exc) from None
    import asyncio

    try:
        await asyncio.to_thread(upgrade, settings.database_url)
        await _run_bot(settings, host, port)
    finally:
        await runner.cleanup()


async def _run_bot(settings: Any, host: str, port: int) -> None:
    import asyncio

    from bot.app import ALLOWED_UPDATES, build_application
    from core.bundle import BundleError

    try:
        app = build_application(settings)
    except BundleError as exc:
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


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    # asyncio is imported where it is used: every `lstmbot` command imports this module to
    # register its subcommand, and asyncio was ~40 ms of `lstmbot generate`'s 0.5 s start.
    import asyncio

    port = choose_port(args.port)
    asyncio.run(_serve(args.host, port))
    return 0
