"""What every platform emulator module offers, so tests and benchmarks treat them alike.

Each `tests/emulators/<slug>.py` exposes `build(*, members: int = 0, seed: int = 0) -> Emulator`:
a fresh, stateful emulator with one list (`list_id`) holding `members` subscribed members
(`member{i}@example.com`), plus whatever other lists/segments/tags the platform has.

Serve it with `tests.emulators.server.serve(emulator.app)` and build the connector with
`emulator.connector(server.url)`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp

from core.connectors.base import Connector
from tests.emulators.contract import ContractViolations
from tests.emulators.faults import FaultPlan


@dataclass
class Emulator:
    slug: str
    app: ASGIApp  # wrapped in FaultMiddleware (and ContractMiddleware where a spec exists)
    faults: FaultPlan
    list_id: str
    state: Any  # the platform's own in-memory model
    counters: Counter = field(default_factory=Counter)  # "requests", "unsubscribed", "deleted", "429", ...
    violations: ContractViolations | None = None  # None where the platform publishes no spec
    # credentials for a connector pointed at base_url: valid, wrong key, read-only key
    credentials: Callable[[str], dict[str, str]] = lambda base_url: {}
    bad_credentials: Callable[[str], dict[str, str]] = lambda base_url: {}
    read_only_credentials: Callable[[str], dict[str, str]] | None = None
    # platform state probes, by email
    is_unsubscribed: Callable[[str], bool] = lambda email: False
    is_deleted: Callable[[str], bool] = lambda email: False
    add_member: Callable[[str, str], str] | None = None  # (list_id, email) -> contact id

    def connector(self, base_url: str, *, credentials: dict[str, str] | None = None, **kw: Any) -> Connector:
        from core.connectors import get_platform

        cls = get_platform(self.slug)
        return cls(credentials if credentials is not None else self.credentials(base_url), base_url=base_url, **kw)
