"""Several `lstmbot run` replicas in webhook mode behind HAProxy, all on one PostgreSQL.

Real parts on loopback only: Debian's HAProxy (health checks on /healthz, and a refused
connection marks a replica down at once, so a killed replica is out within a second; a
request that died with its replica is retried on another one), the replicas as separate
processes started exactly as in production, and the sandbox (in the caller's process) playing
Telegram: it posts each update to HAProxy's front port and retries it until some replica
answers 2xx. Used by bench/replicas.py and tests/e2e/test_replicas.py.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from sandbox.testing import SandboxServer

ROOT = Path(__file__).resolve().parent.parent
SECRET = "rig-secret"
METRICS_TOKEN = "rig-metrics"

HAPROXY_CFG = """\
global
    maxconn 2000

defaults
    mode http
    timeout connect 1s
    timeout client 120s
    timeout server 120s
    # A request whose replica refused the connection or died before answering goes to
    # another replica: the update is then handled there (exactly once, by the database claims).
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout

frontend telegram
    bind 127.0.0.1:{front}
    default_backend replicas

backend replicas
    balance leastconn
    option httpchk GET /healthz
    http-check expect status 200
    # A refused connection in live traffic takes a replica out at once (a killed one refuses);
    # checks every 500 ms (200 ms while it changes state), with 3 s to answer, so a replica
    # busy generating is not mistaken for a dead one; two good checks bring it back.
    timeout check 3s
    default-server inter 500ms fastinter 200ms fall 2 rise 2
{servers}
"""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def haproxy_binary() -> str:
    """HAProxy's path, or a clear error naming the package to install."""
    path = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if path is None:
        raise RuntimeError("HAProxy is not installed: apt-get install -y haproxy (.ci/run does it)")
    return path


@dataclass
class Replica:
    """One `lstmbot run` process and its webhook port."""

    name: str
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Rig:
    """The running parts; start/kill/restart replicas while the sandbox keeps posting."""

    sb: SandboxServer
    database_url: str
    front_port: int
    env: dict[str, str]
    folder: Path
    replicas: list[Replica] = field(default_factory=list)
    haproxy: subprocess.Popen[bytes] | None = None

    def start(self, replica: Replica) -> None:
        """Start (or start again) a replica on its port."""
        env = {
            **os.environ,
            **self.env,
            "WEBHOOK_PORT": str(replica.port),
            "REPLICA_ID": replica.name,
        }
        replica.starts += 1
        with replica.log.open("ab") as out:
            out.write(f"\n--- start {replica.starts} ---\n".encode())
            out.flush()
            replica.proc = subprocess.Popen(
                [sys.executable, "-m", "cli", "run"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def kill(self, replica: Replica) -> None:
        """kill -9: no clean-up, requests in flight die with it."""
        assert replica.proc is not None
        replica.proc.send_signal(signal.SIGKILL)
        replica.proc.wait()

    async def stop(self, replica: Replica, timeout: float = 30) -> None:
        """SIGTERM: a graceful stop (requests in flight finish first)."""
        if replica.proc is None or replica.proc.poll() is not None:
            return
        replica.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(replica.proc.wait, timeout)
        except subprocess.TimeoutExpired:
            replica.proc.kill()
            replica.proc.wait()

    async def healthy(self, replica: Replica, timeout: float = 90) -> None:
        """Wait until the replica answers /healthz with 200 (it has loaded and connected)."""
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{replica.port}/healthz"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while time.monotonic() < deadline:
                if not replica.alive:
                    raise RuntimeError(f"replica {replica.name} exited; see {replica.log}")
                try:
                    async with http.get(url) as resp:
                        if resp.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.2)
        raise TimeoutError(f"replica {replica.name} not healthy after {timeout:g} s; see {replica.log}")

    async def restart(self, replica: Replica) -> None:
        """Start it again and wait until it is healthy."""
        self.start(replica)
        await self.healthy(replica)

    async def metrics(self, replica: Replica) -> str:
        """The replica's /metrics text."""
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
            http.get(
                f"http://127.0.0.1:{replica.port}/metrics",
                headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
            ) as resp,
        ):
            return await resp.text()

    def logs(self) -> str:
        """Every replica's log, for a failure message."""
        return "\n".join(
            f"== {r.name} ==\n{r.log.read_text(errors='replace')[-4000:]}" for r in self.replicas
        )


@asynccontextmanager
async def running_rig(
    sb: SandboxServer,
    database_url: str,
    *,
    replicas: int = 2,
    env: dict[str, str] | None = None,
) -> AsyncIterator[Rig]:
    """Migrate `database_url`, start HAProxy and `replicas` replicas; stop everything at the end."""
    from migrations import upgrade

    await asyncio.to_thread(upgrade, database_url)
    folder = Path(tempfile.mkdtemp(prefix="lstmbot-rig-"))
    front = free_port()
    base_env = {
        "TELEGRAM_TOKEN": sb.token,
        "TELEGRAM_API_BASE_URL": sb.base_url,
        "DATABASE_URL": database_url,
        "WEBHOOK_URL": f"http://127.0.0.1:{front}/telegram",
        "WEBHOOK_SECRET": SECRET,
        "METRICS_TOKEN": METRICS_TOKEN,  # the webhook port is public: its /metrics needs it
        "WEBHOOK_LISTEN": "127.0.0.1",
        **(env or {}),
    }
    rig = Rig(sb, database_url, front, base_env, folder)
    rig.replicas = [Replica(f"r{i + 1}", free_port(), folder / f"r{i + 1}.log") for i in range(replicas)]
    servers = "\n".join(
        f"    server {r.name} 127.0.0.1:{r.port} check observe layer4 error-limit 1 on-error mark-down"
        for r in rig.replicas
    )
    cfg = folder / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(front=front, servers=servers))
    binary = haproxy_binary()
    check = await asyncio.to_thread(
        subprocess.run, [binary, "-c", "-q", "-f", str(cfg)], capture_output=True, text=True
    )
    if check.returncode != 0:
        raise RuntimeError(f"bad HAProxy configuration: {check.stderr or check.stdout}")
    with (folder / "haproxy.log").open("wb") as out:
        rig.haproxy = subprocess.Popen(  # noqa: ASYNC220 - starting it is instant; never waited on here
            [binary, "-db", "-f", str(cfg)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        for replica in rig.replicas:
            rig.start(replica)
        await asyncio.gather(*(rig.healthy(r) for r in rig.replicas))
        yield rig
    finally:
        await asyncio.gather(*(rig.stop(r) for r in rig.replicas))
        rig.haproxy.terminate()
        rig.haproxy.wait()
