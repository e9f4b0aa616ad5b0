"""Which replica ids name certainly dead processes (bot/replicas.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from bot.replicas import dead_among, is_dead


def _exited_pid() -> int:
    """The pid of a process of this host that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_this_replicas_own_id_from_an_earlier_run_is_dead() -> None:
    assert is_dead("replica-1", me="replica-1")


def test_a_default_id_of_this_host_is_dead_only_when_its_process_is_gone() -> None:
    host = socket.gethostname()
    assert is_dead(f"{host}:{_exited_pid()}", me="other")
    assert not is_dead(f"{host}:{os.getpid()}", me="other")  # this very process
    assert not is_dead(f"{host}:{os.getppid()}", me="other")  # a live process


def test_other_hosts_and_fixed_names_are_never_presumed_dead() -> None:
    pid = _exited_pid()
    assert not is_dead(f"elsewhere:{pid}", me="me", host="here")
    assert not is_dead("replica-2", me="replica-1")
    assert not is_dead(f"{socket.gethostname()}:not-a-pid", me="me")
    assert dead_among(["me", "replica-2", f"{socket.gethostname()}:{pid}"], me="me") == [
        "me",
        f"{socket.gethostname()}:{pid}",
    ]
