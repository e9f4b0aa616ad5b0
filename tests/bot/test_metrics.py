"""The /metrics endpoint: Prometheus text built from the live services."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from pydantic import SecretStr

from bot.db.database import Database
from bot.generation import GenerationService
from bot.metrics import metrics_app, scrape_allowed
from bot.services import Services
from bot.settings import Settings
from bot.user_limits import UserLimits
from core.bundle import load_bundle
from core.generator import Request


async def test_metrics_report_the_services_numbers(tiny_bundle: Path, tmp_path: Path) -> None:
    generation = GenerationService({"tiny": load_bundle(tiny_bundle)}, default="tiny")
    generation.start()
    services = Services(
        settings=Settings(replica_id="r7"),
        db=Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}"),
        generation=generation,
        limits=UserLimits(5),
    )
    await generation.generate(Request("truth", length=10, rng=1))
    services.counters.samples, services.counters.ratings = 3, 2
    async with TestClient(TestServer(metrics_app(services))) as client:
        response = await client.get("/metrics")
        body = await response.text()
        assert response.status == 200
        assert (await (await client.get("/healthz")).text()) == "ok"
    await generation.close()
    await services.db.dispose()
    assert "lstmbot_samples_total 3.0" in body
    assert "lstmbot_ratings_total 2.0" in body
    assert "lstmbot_generations_total 1.0" in body
    # Each replica says who it is; its queue and latency are its own.
    assert 'lstmbot_replica_info{replica="r7"} 1.0' in body
    assert 'lstmbot_queue_depth{replica="r7"} 0.0' in body
    version = generation.info("tiny").version  # which version each replica serves (hot reload)
    assert f'lstmbot_model_info{{model="tiny",replica="r7",role="champion",version="{version}"}} 1.0' in body
    assert 'lstmbot_generation_latency_seconds{quantile="0.95",replica="r7"}' in body


async def test_metrics_with_a_token_answer_only_its_bearer(tiny_bundle: Path, tmp_path: Path) -> None:
    """Issue 24, item 11: /metrics answered anyone. With METRICS_TOKEN only its bearer."""
    services = Services(
        settings=Settings(replica_id="r7", metrics_token=SecretStr("s3cret-scrape")),
        db=Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}"),
        generation=GenerationService({"tiny": load_bundle(tiny_bundle)}, default="tiny"),
        limits=UserLimits(5),
    )
    async with TestClient(TestServer(metrics_app(services))) as client:
        assert (await client.get("/metrics")).status == 401
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrap"})
        assert wrong.status == 401
        right = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
        assert right.status == 200 and "lstmbot_replica_info" in await right.text()
        assert (await client.get("/healthz")).status == 200  # health checks need no token
    await services.db.dispose()


def test_the_public_webhook_port_serves_metrics_only_with_a_token() -> None:
    bearer = make_mocked_request("GET", "/metrics", headers={"Authorization": "Bearer t"})
    anonymous = make_mocked_request("GET", "/metrics")
    assert not scrape_allowed(anonymous, None, public=True) and not scrape_allowed(bearer, None, public=True)
    assert scrape_allowed(anonymous, None, public=False)  # METRICS_PORT: private by deployment
    assert scrape_allowed(bearer, SecretStr("t"), public=True)
    assert not scrape_allowed(anonymous, SecretStr("t"), public=True)
    assert not scrape_allowed(anonymous, SecretStr("t"), public=False)
