"""Fault injection: make the next N calls of a method fail the way Telegram or a network can."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["429", "500", "hang", "drop"]


@dataclass
class Fault:
    """`times` more calls of `method` ("*" for any) get `kind`."""

    method: str
    kind: FaultKind
    times: int = 1
    retry_after: int = 1
    hang_s: float = 5.0


class Faults:
    """The pending faults; the server consumes one per matching call."""

    def __init__(self) -> None:
        self._pending: list[Fault] = []
        self.fired: list[tuple[str, FaultKind]] = []
        self._random: tuple[float, FaultKind, random.Random] | None = None

    def randomly(self, probability: float, kind: FaultKind = "500", *, seed: int = 0) -> None:
        """From now on, fail each call with `probability` (0 switches it off)."""
        self._random = (probability, kind, random.Random(seed)) if probability > 0 else None

    def add(
        self, method: str, kind: FaultKind, *, times: int = 1, retry_after: int = 1, hang_s: float = 5.0
    ) -> Fault:
        """Queue a fault for the next `times` calls of `method` (case-insensitive)."""
        fault = Fault(method.lower(), kind, times, retry_after, hang_s)
        self._pending.append(fault)
        return fault

    def clear(self) -> None:
        """Drop every pending fault."""
        self._pending.clear()

    def take(self, method: str) -> Fault | None:
        """The fault for this call, if one is pending (and count it down)."""
        if self._random is not None:
            probability, kind, rng = self._random
            if rng.random() < probability:
                self.fired.append((method, kind))
                return Fault(method.lower(), kind, hang_s=2.0)
        for fault in self._pending:
            if fault.method in (method.lower(), "*") and fault.times > 0:
                fault.times -= 1
                if fault.times == 0:
                    self._pending.remove(fault)
                self.fired.append((method, fault.kind))
                return fault
        return None
