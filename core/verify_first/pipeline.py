"""Processing one stored delivery: its new subscribers through keywords, verification and action.

    result = await pipeline.process(delivery)   # the record kept with the delivery (deliveries.finish)

Every step of every subscriber is recorded (`steps`), and the delivery's `summary` is what the
Slack digest adds up. The work is idempotent, so a delivery taken up again after a crash ends
exactly as if it had been processed once:
- each subscriber is claimed for this delivery before anything is done for it (a duplicate
  announcement, in this delivery or another, is recorded as such and skipped);
- the credits are one ledger entry per delivery, keyed by it (and unknowns refunded, keyed too);
- unsubscribe and delete are idempotent on every platform, and the audit row of each action is
  keyed by delivery, subscriber and action, so it is written once.

A platform outage while acting raises `TryLater`: the delivery stays leased and is taken up
again once the lease lapses (the processor gives up after the inbox's attempt limit).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from core.cleanup import Planned
from core.connections import ConnectionView
from core.connectors.base import Connector, Contact
from core.connectors.errors import (
    ConnectorError,
    InsufficientScope,
    InvalidCredentials,
    PlatformUnavailable,
    RateLimited,
    UnsupportedAction,
)
from core.deliveries import Delivery
from core.storage.sql import default_connection, execute_many, utcnow
from core.verify.result import Result
from core.verify.status import Status, info
from core.verify_first.cache import RecentResults
from core.verify_first.requests import (
    POLL,
    Subscriber,
    delivery_request,
    digest,
    poll_events,
)
from core.verify_first.rules import VerifyFirstRules

log = logging.getLogger(__name__)
ACTIONS = ("unsubscribe", "delete")
HYDRATE_AT_ONCE = 8
ACT_RETRIES = 3
CLAIM_SCOPE = "verify-first:subscriber"
ACTOR = "verify-first"


class TryLater(Exception):
    """A transient failure (the platform is down or rate limiting): process this delivery again later."""


@dataclass
class ConnectionContext:
    view: ConnectionView
    connector: Connector
    rules: VerifyFirstRules


ContextLoader = Callable[[str], Awaitable[ConnectionContext | None]]
VerifierSource = Callable[[], Awaitable[Any]]


def _record(sub: Subscriber) -> dict[str, Any]:
    return {"email": sub.email, "contact_id": sub.contact_id, "list_id": sub.list_id, "steps": [],
            "keyword": None, "status": None, "action": "keep", "because": "", "outcome": "kept"}


def _verification_step(result: Result, cached: bool) -> dict[str, Any]:
    return {"step": "verify", "status": str(result.status), "score": result.score, "cached": cached,
            "reason": result.reason[:300] if result.reason else ""}


class Pipeline:
    def __init__(self, services: Any, load_context: ContextLoader, verifier: VerifierSource, cache: RecentResults) -> None:
        self.services = services
        self.load_context = load_context
        self.verifier = verifier
        self.cache = cache

    async def process(self, delivery: Delivery) -> dict[str, Any]:
        started = time.monotonic()
        ctx = await self.load_context(delivery.connection_id)
        if ctx is None:
            return {"skipped": "The connection is gone or disconnected, so nothing was done.", "summary": {}}
        if not ctx.view.settings.verify_first:
            return {"skipped": "Verify-first is off for this connection, so nothing was done.", "summary": {}}
        subscribers, unresolved = await self._subscribers(ctx, delivery)
        records: list[dict[str, Any]] = []
        duplicates = 0
        mine: list[tuple[Subscriber, dict[str, Any]]] = []
        seen: set[str] = set()
        for sub in subscribers:
            if sub.identity not in seen and await self._claim(ctx, sub, delivery.id):
                seen.add(sub.identity)
                record = _record(sub)
                records.append(record)
                mine.append((sub, record))
            else:
                duplicates += 1
        to_verify = self._keyword_step(ctx, mine)
        await self._verify_step(ctx, delivery, to_verify)
        await self._action_step(ctx, delivery, mine)
        return {"subscribers": records, "duplicates": duplicates, "unresolved": unresolved,
                "summary": summarize(records, duplicates), "seconds": round(time.monotonic() - started, 3)}

    # --- who the delivery announces -------------------------------------------------------------
    async def _subscribers(self, ctx: ConnectionContext, delivery: Delivery) -> tuple[list[Subscriber], int]:
        if delivery.method == POLL:
            events = poll_events(delivery.body)
        else:
            events = ctx.connector.parse_webhook(delivery_request(delivery))
        gate = asyncio.Semaphore(HYDRATE_AT_ONCE)

        async def hydrate(event) -> Subscriber | None:
            if event.email:
                return Subscriber(event.email.strip(), event.contact_id, event.list_id, event.event_id)
            if not event.contact_id:
                return None
            async with gate:
                try:
                    contact = await ctx.connector.resolve_contact(event.contact_id)
                except (RateLimited, PlatformUnavailable) as err:
                    raise TryLater(str(err)) from err
            if contact is None or not contact.email:
                return None  # deleted meanwhile, or a contact without an address: nothing to verify
            return Subscriber(contact.email.strip(), contact.id, event.list_id or contact.list_id, event.event_id)

        found = await asyncio.gather(*(hydrate(e) for e in events))
        subscribers = [s for s in found if s is not None]
        return subscribers, len(found) - len(subscribers)

    async def _claim(self, ctx: ConnectionContext, sub: Subscriber, delivery_id: int) -> bool:
        """This delivery owns the subscriber (first to announce it, or our own earlier attempt)."""
        key = f"{ctx.view.id}:{sub.identity}"
        if len(key) > 200:
            key = f"{ctx.view.id}:#{digest(key)}"
        idem = self.services.idempotency
        if await idem.remember(CLAIM_SCOPE, key, 200, {"delivery": delivery_id}):
            return True
        owner = await idem.replay(CLAIM_SCOPE, key)
        return owner is not None and owner[1].get("delivery") == delivery_id

    # --- the steps ------------------------------------------------------------------------------
    def _keyword_step(self, ctx: ConnectionContext, mine: Sequence[tuple[Subscriber, dict[str, Any]]]):
        to_verify = []
        for sub, record in mine:
            planned = ctx.rules.keyword(sub.email)
            record["steps"].append({"step": "keywords", "match": planned.because if planned else None})
            if planned is None:
                to_verify.append((sub, record))
                continue
            record["keyword"] = planned.because
            self._plan(record, planned)
        return to_verify

    async def _verify_step(self, ctx: ConnectionContext, delivery: Delivery, to_verify) -> None:
        if not to_verify:
            return
        workspace = ctx.view.workspace_id
        fresh = [(s, r) for s, r in to_verify if not self.cache.known(s.email)]
        paid = len(fresh)
        credits = self.services.credits
        if fresh:
            paid = await credits.charge(workspace, len(fresh), reason=f"verify-first: {ctx.view.name}",
                                        key=f"vf:{delivery.id}:charge", partial=True)
        unpaid = {id(r) for _, r in fresh[paid:]}
        verifier = await self.verifier()

        async def one(sub: Subscriber, record: dict[str, Any]) -> Result | None:
            if id(record) in unpaid:
                record["steps"].append({"step": "verify", "status": None, "reason": "out of credits"})
                record["outcome"] = "not_verified"
                return None
            result, cached = await self.cache.get(sub.email, verifier.verify)
            record["steps"].append(_verification_step(result, cached))
            record["status"] = str(result.status)
            self._plan(record, ctx.rules.after_verification(result.status))
            return result if not cached else None

        results = await asyncio.gather(*(one(s, r) for s, r in to_verify))
        refunds = sum(1 for r in results if r is not None and info(r.status).refunded)
        if refunds:
            await credits.refund(workspace, min(refunds, paid), reason="verify-first: unknown results refunded",
                                 key=f"vf:{delivery.id}:refund")

    @staticmethod
    def _plan(record: dict[str, Any], planned: Planned) -> None:
        record["action"], record["because"] = planned.action, planned.because
        record["outcome"] = "kept" if planned.action == "keep" else "pending"

    async def _action_step(self, ctx: ConnectionContext, delivery: Delivery, mine) -> None:
        for action in ACTIONS:
            wanted = [(s, r) for s, r in mine if r["action"] == action and r["outcome"] == "pending"]
            if not wanted:
                continue
            refused = ctx.rules.unsupported(action)
            if refused:
                for _, record in wanted:
                    self._acted(record, action, "failed", refused)
                continue
            contacts = [s.contact() for s, _ in wanted]
            try:
                outcome = await self._send(ctx.connector, action, contacts)
            except (InsufficientScope, InvalidCredentials, UnsupportedAction) as err:
                reason = "this API key is read-only" if isinstance(err, InsufficientScope) else str(err)
                for _, record in wanted:
                    self._acted(record, action, "failed", reason)
                continue
            done = set(outcome.done)
            applied = []
            for (sub, record), contact in zip(wanted, contacts, strict=True):
                if contact.id in done:
                    self._acted(record, action, "done")
                    applied.append((sub, contact))
                else:
                    self._acted(record, action, "failed", outcome.failed.get(contact.id) or "the platform did not confirm it")
            await self._audit(ctx, delivery, action, applied)

    @staticmethod
    def _acted(record: dict[str, Any], action: str, outcome: str, error: str | None = None) -> None:
        step: dict[str, Any] = {"step": "action", "action": action, "outcome": outcome}
        if error:
            step["error"] = error[:300]
        record["steps"].append(step)
        record["outcome"] = outcome

    @staticmethod
    async def _send(connector: Connector, action: str, contacts: list[Contact]):
        for attempt in range(ACT_RETRIES + 1):
            try:
                if action == "unsubscribe":
                    return await connector.unsubscribe(contacts)
                return await connector.delete(contacts)
            except (RateLimited, PlatformUnavailable) as err:
                if attempt == ACT_RETRIES:
                    raise TryLater(str(err)) from err
                await asyncio.sleep(min(getattr(err, "retry_after", None) or 0.5 * 2 ** attempt, 10.0))
            except ConnectorError:
                raise
        raise AssertionError("unreachable")

    async def _audit(self, ctx: ConnectionContext, delivery: Delivery, action: str, applied) -> None:
        """One audit row per contact changed, keyed so that a retried delivery writes it once."""
        if not applied:
            return
        now = utcnow()
        rows = []
        for sub, contact in applied:
            key = f"vf:{delivery.id}:{digest(sub.identity)[:32]}:{action}"
            rows.append([key, None, ctx.view.workspace_id, ctx.view.id, ctx.view.platform, sub.list_id, contact.id,
                         sub.email, action, ACTOR, now])
        await execute_many(
            default_connection(),
            "INSERT INTO action_audit (key, job_id, workspace_id, connection_id, platform, list_id, contact_id, email, "
            "action, actor, applied_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING", rows)


def summarize(records: Sequence[dict[str, Any]], duplicates: int = 0) -> dict[str, Any]:
    """What the digest adds up: "invalid:unsubscribe" -> n for each action done, and the rest."""
    acted: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    for r in records:
        if r["status"]:
            statuses[r["status"]] += 1
        if r["outcome"] == "done":
            acted[f"{r['because']}:{r['action']}"] += 1
        elif r["outcome"] == "failed":
            failed[f"{r['because']}:{r['action']}"] += 1
    return {
        "new": len(records),
        "verified": sum(statuses.values()),
        "whitelisted": sum(1 for r in records if r["keyword"] == "whitelist"),
        "blacklisted": sum(1 for r in records if r["keyword"] == "blacklist"),
        "not_verified": sum(1 for r in records if r["outcome"] == "not_verified"),
        "statuses": dict(statuses),
        "acted": dict(acted),
        "failed": dict(failed),
        "duplicates": duplicates,
    }


__all__ = ["ConnectionContext", "Pipeline", "Status", "TryLater", "summarize"]
