"""The webhook server: answers Telegram only after the update was handled.

python-telegram-bot's built-in webhook server answers 200 as soon as it has queued an update,
so an update in flight on a replica that dies is lost for good (Telegram thinks it was
delivered). Here the 2xx is sent after `Application.process_update` returned: a replica killed
mid-update never answers, the load balancer fails the request, Telegram (or the sandbox)
posts the update again, and another replica handles it. The database claims
(`processed_updates`, the samples' send claims) make that second handling produce exactly one
reply. `/healthz` is for the load balancer's health checks; `/metrics` is this replica's, served
here (a public port) only with METRICS_TOKEN.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import signal

from aiohttp import web
from prometheus_client import CollectorRegistry
from telegram import Update
from telegram.ext import Application

from bot.metrics import metrics_response, refused, registry_for, scrape_allowed
from bot.services import SERVICES_KEY

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_PATH = "/telegram"


def webhook_app(application: Application, secret: str) -> web.Application:  # type: ignore[type-arg]
    """An aiohttp app: POST /telegram handles one update, then answers; GET /healthz."""

    in_flight: dict[int, asyncio.Future[None]] = {}

    async def on_update(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return web.Response(status=403, text="bad secret")
        try:
            payload = await request.json()
            update = Update.de_json(payload, application.bot)
        except (json.JSONDecodeError, ValueError, TypeError, KeyError) as exc:
            log.warning("webhook: not an update (%s)", exc)
            return web.Response(status=400, text="not an update")
        # Telegram posts an update again when the first post timed out, while this process
        # may still be handling it: the second post then waits for the first handling instead
        # of starting another (which would find the user busy and refuse). Shielded, so a post
        # given up by Telegram never cancels the handling. Handler errors are logged and
        # reported to the user inside process_update; anything escaping it is a 5xx.
        task = in_flight.get(update.update_id)
        if task is None:
            # Through the update processor, as polled updates go (a user's presses in line).
            handling = application.update_processor.process_update(update, application.process_update(update))
            task = asyncio.ensure_future(handling)
            in_flight[update.update_id] = task
            task.add_done_callback(lambda _: in_flight.pop(update.update_id, None))
        await asyncio.shield(task)
        return web.Response(text="ok")

    registries: list[CollectorRegistry] = []

    async def metrics(request: web.Request) -> web.Response:
        services = application.bot_data.get(SERVICES_KEY)
        if services is None:
            return web.Response(status=503, text="starting")
        if not scrape_allowed(request, services.settings.metrics_token, public=True):
            return refused()
        if not registries:  # the services exist only after post_init
            registries.append(registry_for(services))
        return metrics_response(registries[0])

    async def healthz(request: web.Request) -> web.Response:
        # Healthy once the services exist (post_init ran): before that an update would fail.
        if SERVICES_KEY not in application.bot_data:
            return web.Response(status=503, text="starting")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(WEBHOOK_PATH, on_update)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


async def serve_webhook(
    application: Application,  # type: ignore[type-arg]
    *,
    listen: str,
    port: int,
    url: str,
    secret: str,
    allowed_updates: list[str],
    max_connections: int = 40,
) -> None:
    """Run the bot behind this server until SIGTERM/SIGINT; the webhook is (re)set at start.

    Every replica sets the same webhook URL (the load balancer's), so setting it is idempotent.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await application.initialize()
    if application.post_init is not None:
        await application.post_init(application)
    await application.start()
    runner = web.AppRunner(webhook_app(application, secret), access_log=None, shutdown_timeout=25)
    await runner.setup()
    try:
        await web.TCPSite(runner, listen, port).start()
        await application.bot.set_webhook(
            url,
            secret_token=secret,
            allowed_updates=allowed_updates,
            max_connections=max_connections,
        )
        log.info("webhook: serving on %s:%d%s for %s", listen, port, WEBHOOK_PATH, url)
        await stop.wait()
        log.info("webhook: stopping")
    finally:
        # Requests in flight finish (up to 25 s) before the services go; new ones go elsewhere.
        await runner.cleanup()
        await application.stop()
        if application.post_stop is not None:
            await application.post_stop(application)
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)
