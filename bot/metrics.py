"""Prometheus metrics: read from the live services at scrape time, served on METRICS_PORT."""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import SecretStr

from bot.services import Services

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServicesCollector(Collector):
    """Exposes the generation service's and the handlers' counters without keeping copies."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        s = self.services
        gen = s.generation
        replica = s.settings.replica_id
        # Which replica answers this scrape (REPLICA_ID); queue and latency are this replica's.
        info = GaugeMetricFamily(
            "lstmbot_replica_info", "The replica serving these metrics", labels=["replica"]
        )
        info.add_metric([replica], 1)
        yield info
        # Which version of each model this replica serves now (hot reload: all should agree
        # within MODEL_POLL_S of a promotion).
        served = GaugeMetricFamily(
            "lstmbot_model_info",
            "The model versions this replica serves",
            labels=["replica", "model", "role", "version"],
        )
        for role, generators in (("champion", gen.generators), ("challenger", gen.challengers)):
            for name, generator in sorted(generators.items()):
                served.add_metric([replica, name, role, generator.bundle.version], 1)
        yield served
        latency = GaugeMetricFamily(
            "lstmbot_generation_latency_seconds",
            "Queue-to-done generation latency over this replica's last 1,000 requests",
            labels=["replica", "quantile"],
        )
        for q, value in gen.latency_percentiles((50, 90, 95, 99)).items():
            latency.add_metric([replica, f"{q / 100:g}"], value)
        yield latency
        depth = GaugeMetricFamily(
            "lstmbot_queue_depth", "Generation requests waiting on this replica", labels=["replica"]
        )
        depth.add_metric([replica], gen.queue_depth)
        yield depth
        yield CounterMetricFamily("lstmbot_generations", "Generations completed", value=gen.completed)
        yield CounterMetricFamily("lstmbot_generation_failures", "Generations that failed", value=gen.failed)
        yield CounterMetricFamily("lstmbot_samples", "Samples stored", value=s.counters.samples)
        yield CounterMetricFamily(
            "lstmbot_ratings", "Rating button presses recorded", value=s.counters.ratings
        )
        yield CounterMetricFamily("lstmbot_errors", "Updates that ended in an error", value=s.counters.errors)
        yield CounterMetricFamily(
            "lstmbot_undelivered_samples", "Samples stored but not delivered", value=s.counters.undelivered
        )
        yield GaugeMetricFamily(
            "lstmbot_uptime_seconds", "Seconds since the bot started", value=time.time() - s.counters.started
        )


def registry_for(services: Services) -> CollectorRegistry:
    """A registry of its own per bot, so tests and several apps never collide."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ServicesCollector(services))
    return registry


def metrics_response(registry: CollectorRegistry) -> web.Response:
    """The registry in Prometheus' text format."""
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE})


def scrape_allowed(request: web.Request, token: SecretStr | None, *, public: bool) -> bool:
    """Whether this request may read /metrics: with METRICS_TOKEN set, only with it (as a
    bearer token, compared in constant time); without it, only on the private METRICS_PORT."""
    if token is None:
        return not public
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {token.get_secret_value()}"
    return hmac.compare_digest(given.encode(), expected.encode())


def refused() -> web.Response:
    """What a scrape without the right token gets (the same whether or not a token is set)."""
    return web.Response(status=401, text="unauthorized", headers={"WWW-Authenticate": "Bearer"})


def metrics_app(services: Services) -> web.Application:
    """An aiohttp app answering GET /metrics (and /healthz for load balancers)."""
    registry = registry_for(services)
    token = services.settings.metrics_token

    async def metrics(request: web.Request) -> web.Response:
        if not scrape_allowed(request, token, public=False):
            return refused()
        return metrics_response(registry)

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


async def start_metrics_server(services: Services, host: str, port: int) -> web.AppRunner:
    """Serve /metrics on host:port; returns the runner to clean up at shutdown."""
    runner = web.AppRunner(metrics_app(services), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
