"""What every race family is made of: the storm's setting (`Race`), its tally and verdict (`RaceResult`), and the
requests it releases together (`call`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from scripts.torture.client import Client
from scripts.torture.dbview import Inspector
from scripts.torture.llm import FakeLlm


@dataclass
class RaceResult:
    family: str
    clients: int
    statuses: Counter[int] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    @property
    def operations(self) -> int:
        return sum(self.statuses.values())

    @property
    def acknowledged(self) -> int:
        return sum(count for status, count in self.statuses.items() if 200 <= status < 300)

    def see(self, responses: list[httpx.Response]) -> None:
        for response in responses:
            self.statuses[response.status_code] += 1

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            self.violations.append(f"{self.family}: {message}")

    def only(self, responses: list[httpx.Response], allowed: set[int], what: str) -> None:
        bad = Counter(r.status_code for r in responses if r.status_code not in allowed)
        self.expect(not bad, f"{what}: unexpected statuses {dict(bad)} (allowed {sorted(allowed)})")
        for response in responses:
            if response.status_code >= 400:
                kind = response.headers.get("content-type", "").split(";")[0]
                self.expect(kind == "application/problem+json", f"{what}: {response.status_code} is not a problem")


@dataclass
class Race:
    client: Client
    db: Inspector
    clients: int = 32
    llm: FakeLlm | None = None  # the server's title generator, when it was started with one


Family = Callable[[Race], Awaitable[RaceResult]]
Call = Callable[[], Awaitable[httpx.Response]]


def call(client: Client, method: str, path: str, user: str, **kwargs: Any) -> Call:
    """A request to send later (when the storm's gate opens)."""
    return lambda: client.request(method, path, user, **kwargs)
