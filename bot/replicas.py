"""Which replica ids name processes that are certainly dead, so their claims need no lease.

A replica id is REPLICA_ID, by default ``hostname:pid``. Two kinds of holder are known dead at
start-up: this replica's own id from an earlier run (a fixed REPLICA_ID that restarted), and a
default id of this same host whose process no longer runs (a crash, then a restart with a new
pid). Any other holder may be alive on another host: only its lease can tell.
"""

from __future__ import annotations

import os
import socket


def _pid_runs(pid: int) -> bool:
    """Whether a process with this pid exists on this host (signal 0 checks without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def is_dead(replica: str, *, me: str, host: str | None = None) -> bool:
    """Whether `replica` names a process that cannot be running now."""
    if replica == me:
        return True  # our own id, claimed before this process started
    name, _, pid = replica.rpartition(":")
    if name != (host or socket.gethostname()) or not pid.isdigit():
        return False
    return int(pid) != os.getpid() and not _pid_runs(int(pid))


def dead_among(replicas: list[str], *, me: str) -> list[str]:
    """The ids among `replicas` whose processes are certainly dead."""
    return [replica for replica in replicas if is_dead(replica, me=me)]


__all__ = ["dead_among", "is_dead"]
