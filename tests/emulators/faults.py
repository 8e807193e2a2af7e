"""Fault injection shared by every emulator: queue up 429s, 5xx and slow replies for the next requests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send


@dataclass
class Fault:
    status: int = 503
    retry_after: float | None = None  # seconds, sent as Retry-After when set
    delay: float = 0.0  # seconds before answering (slow reply); status 0 = answer normally after the delay
    headers: dict[str, str] = field(default_factory=dict)
    body: dict | None = None
    path_prefix: str = ""  # only requests whose path starts with this


@dataclass
class FaultPlan:
    queue: list[Fault] = field(default_factory=list)
    injected: int = 0

    def add(self, fault: Fault, times: int = 1) -> None:
        self.queue.extend([fault] * times)

    def take(self, path: str) -> Fault | None:
        for i, fault in enumerate(self.queue):
            if path.startswith(fault.path_prefix):
                self.injected += 1
                return self.queue.pop(i)
        return None


class FaultMiddleware:
    """Answers the next queued fault instead of the emulator, or delays the emulator's answer."""

    def __init__(self, app: ASGIApp, plan: FaultPlan) -> None:
        self.app = app
        self.plan = plan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fault = self.plan.take(scope["path"])
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.status == 0:
            await self.app(scope, receive, send)
            return
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        response: Response = JSONResponse(
            fault.body if fault.body is not None else {"error": "injected fault"},
            status_code=fault.status,
            headers=headers,
        )
        await response(scope, receive, send)
