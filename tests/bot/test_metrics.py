"""The /metrics endpoint: Prometheus text built from the live services."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from bot.db.database import Database
from bot.generation import GenerationService
from bot.limits import UserLimits
from bot.metrics import metrics_app
from bot.services import Services
from bot.settings import Settings
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
    assert 'lstmbot_generation_latency_seconds{quantile="0.95",replica="r7"}' in body
