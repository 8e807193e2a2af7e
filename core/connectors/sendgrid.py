"""SendGrid Marketing Campaigns (new v3): `Authorization: Bearer SG.…`, lists and segments.

Quirks, in short:
- No paged member read. The only full read is the asynchronous export job: create it, poll it
  until `ready`, then download each of its pre-signed URLs (S3), which take no Authorization
  header and are usually gzip files. They are decompressed and parsed incrementally.
- List membership has no subscription state. Unsubscribing means a global suppression, batched by
  email, and resubscribing removes it. `members()` skips globally suppressed addresses.
- Delete is an asynchronous job (202 `job_id`). It is confirmed through the import-status
  endpoint, which the docs name for delete jobs too.
- No new-subscriber webhook (the Event Webhook reports sends), so `contacts_since` polls the SGQL
  search. A search returns at most 50 contacts, so the time window is bisected until each
  window fits.
- Rate limits are per endpoint and unpublished. Every reply carries `X-RateLimit-*`; PlatformHttp
  waits out a spent window before the next call, and retries a 429 after `X-RateLimit-Reset`.
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
import re
import zlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from core.connectors import register
from core.connectors.base import (
    AccountInfo,
    ActionOutcome,
    Capabilities,
    Connector,
    Contact,
    CredentialField,
    ListKind,
    PlatformList,
)
from core.connectors.errors import (
    ConnectorError,
    InsufficientScope,
    InvalidConfiguration,
    InvalidCredentials,
    ListNotFound,
    PlatformUnavailable,
)
from core.connectors.http import RateLimit
from core.connectors.polling import poll

log = logging.getLogger(__name__)

REGIONS = {"global": "https://api.sendgrid.com", "us": "https://api.sendgrid.com", "eu": "https://api.eu.sendgrid.com"}
SEGMENT_PREFIX = "segment:"  # lists and segments share our list-id space
ALL_CONTACTS = "all"  # an export with neither list_ids nor segment_ids covers every contact
LISTS_PAGE_SIZE = 1000  # documented maximum `page_size`
SUPPRESSIONS_PAGE = 500  # documented maximum `limit` of GET /v3/suppression/unsubscribes
# The docs give no batch limit for recipient_emails; 1,000 keeps a request body well under 100 KB.
SUPPRESS_BATCH = 1000
# The docs give no limit for `ids`; 100 UUIDs keep the DELETE URL under 4 KB.
DELETE_BATCH = 100
SEARCH_LIMIT = 50  # "Only the first 50 contacts that meet the search criteria will be returned."
KEY_RE = re.compile(r"^SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
JOB_DONE = "completed"
JOB_FINISHED = frozenset({"completed", "errored", "failed"})

# Defaults for the waits; `options` overrides them (tests make them tiny).
DEFAULTS: dict[str, Any] = {
    "export_poll_interval": 2.0,  # first wait between export-status polls, in seconds
    "export_poll_max_interval": 30.0,  # the wait grows by half each poll up to this
    "export_max_wait": 1800.0,  # a large export can take minutes; past this we give up clearly
    "delete_wait": 120.0,  # how long delete() waits for its jobs to report completed
    "export_format": "csv",  # "csv" (SendGrid's default) or "json" (JSON lines)
    "skip_suppressed": True,  # members() leaves out globally suppressed addresses
    "lists_page_size": LISTS_PAGE_SIZE,
    "initial_lookback": 86_400.0,  # contacts_since(None) starts this many seconds back
}


@register
class SendGrid(Connector):
    slug = "sendgrid"
    display_name = "SendGrid"
    credential_fields = (
        CredentialField(
            name="api_key",
            label="API key",
            help=(
                "In SendGrid: Settings > API Keys > Create API Key. Choose Full Access, or Restricted Access "
                "with Marketing and Suppressions set to Full. SendGrid shows the key only once."
            ),
            placeholder="SG.xxxxxxxxxxxxxxxxxxxxxx.yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy",
        ),
        CredentialField(
            name="region",
            label="Region",
            help="Leave it as global unless this is an EU regional subuser; that one uses eu (api.eu.sendgrid.com).",
            secret=False,
            required=False,
            placeholder="global",
            choices=(("global", "Global (api.sendgrid.com)"), ("eu", "EU regional subuser (api.eu.sendgrid.com)")),
            default="global",
        ),
    )
    capabilities = Capabilities(
        list_kinds=(ListKind.LIST, ListKind.SEGMENT, ListKind.ALL),
        webhooks="none",
        webhook_registration=False,
        polling=True,
    )
    default_base_url = REGIONS["global"]
    # SendGrid publishes no request rates for these endpoints; it sends them per endpoint in
    # X-RateLimit-* (PlatformHttp honours them). 10 a second is a conservative client-side ceiling on top.
    rate_limit = RateLimit(requests=10, per_seconds=1.0, sliding=True)

    def option(self, name: str) -> Any:
        return self.options.get(name, DEFAULTS[name])

    # --- configuration ---------------------------------------------------------------
    @classmethod
    def validate_credentials(cls, credentials: Mapping[str, str]) -> Mapping[str, str]:
        region = credentials.get("region")
        if isinstance(region, str) and region.strip().lower() == "us":  # the global host serves the US
            credentials = {**credentials, "region": "global"}
        cleaned = dict(super().validate_credentials(credentials))  # region: one of its choices, global by default
        cleaned.pop("base_url", None)  # never let user input choose where the key goes
        key = cleaned["api_key"]
        if key.lower().startswith("bearer "):  # pasted with the header's scheme: harmless, drop it
            key = key[7:].strip()
        if not key.startswith("SG."):
            raise InvalidConfiguration(
                "API key must start with SG.; create one in SendGrid under Settings > API Keys (it is shown only once).",
                field="api_key",
                platform=cls.slug,
            )
        if not KEY_RE.match(key):
            raise InvalidConfiguration(
                "API key does not look like a whole SendGrid key (SG.xxx.yyy); copy it again from where you saved it.",
                field="api_key",
                platform=cls.slug,
            )
        cleaned["api_key"] = key
        return cleaned

    @classmethod
    def resolve_base_url(cls, credentials: Mapping[str, str]) -> str:
        return REGIONS[credentials.get("region", "global")]

    def auth_headers(self) -> dict[str, str]:
        # SendGrid answers 406 to a request that does not accept JSON.
        return {"Authorization": f"Bearer {self.credentials['api_key']}", "Accept": "application/json"}

    def map_error(self, status: int, body: Any, *, write: bool) -> Exception | None:
        if status == 401:
            return InvalidCredentials(
                "SendGrid rejected the API key; check it under Settings > API Keys and connect again.",
                platform=self.slug,
                status=status,
            )
        if status == 403 and write:
            return InsufficientScope(
                "This SendGrid key cannot write (it lacks Full access to Marketing or Suppressions); Verify Only still works.",
                platform=self.slug,
                status=status,
            )
        if status == 403:
            return InvalidCredentials(
                "This SendGrid key has no access to Marketing Campaigns; give it Marketing access under Settings > API Keys.",
                platform=self.slug,
                status=status,
            )
        if status == 408:  # the search gives up after 20 s
            return PlatformUnavailable("SendGrid timed out answering a search; try again later.", platform=self.slug, status=status)
        message = _first_message(body)
        if message:
            return ConnectorError(f"SendGrid refused the request (HTTP {status}): {message}.", platform=self.slug, status=status)
        return None

    # --- reading -------------------------------------------------------------------------
    async def check_credentials(self) -> AccountInfo:
        """The cheapest documented authenticated read in the Marketing API."""
        await self.http.request("GET", "v3/marketing/lists", params={"page_size": 1})
        return AccountInfo(account_id=None, can_write=None)

    async def lists(self) -> list[PlatformList]:
        found: list[PlatformList] = []
        token: str | None = None
        seen_tokens: set[str] = set()
        while True:
            params: dict[str, Any] = {"page_size": int(self.option("lists_page_size"))}
            if token:
                params["page_token"] = token
            body = (await self.http.request("GET", "v3/marketing/lists", params=params)).json()
            for item in body.get("result") or []:
                found.append(PlatformList(str(item["id"]), item.get("name", ""), ListKind.LIST, item.get("contact_count")))
            # `_metadata.next` is a full URL; only its page_token is used, so the key never follows a link.
            token = _page_token((body.get("_metadata") or {}).get("next"))
            if not token or token in seen_tokens:
                break
            seen_tokens.add(token)
        body = (await self.http.request("GET", "v3/marketing/segments/2.0")).json()
        # The docs show `{"results": [...]}`; the saved spec's 200 schema is a single segment, so take either.
        items: list = []
        if isinstance(body, dict):
            items = body.get("results") or [] if "results" in body else [body] if "id" in body else []
        for item in items:
            found.append(PlatformList(f"{SEGMENT_PREFIX}{item['id']}", item.get("name", ""), ListKind.SEGMENT, item.get("contacts_count")))
        count = (await self.http.request("GET", "v3/marketing/contacts/count")).json().get("contact_count")
        found.append(PlatformList(ALL_CONTACTS, "All contacts", ListKind.ALL, count))
        return found

    def _target(self, list_id: str) -> tuple[str, str | None]:
        """(kind, SendGrid id) for one of our list ids; a malformed id cannot be a SendGrid list."""
        if list_id == ALL_CONTACTS:
            return "all", None
        kind, ident = ("segment", list_id[len(SEGMENT_PREFIX):]) if list_id.startswith(SEGMENT_PREFIX) else ("list", list_id)
        if not UUID_RE.match(ident):
            raise ListNotFound(f"SendGrid has no {kind} with id {list_id[:80]}.", platform=self.slug)
        return kind, ident

    async def _ensure_exists(self, kind: str, ident: str | None, list_id: str) -> None:
        if kind == "list":
            response = await self.http.request("GET", f"v3/marketing/lists/{ident}", expect=(404,))
        elif kind == "segment":
            # The spec lists 400 but no 404 for a segment read; either means there is no such segment.
            response = await self.http.request("GET", f"v3/marketing/segments/2.0/{ident}", params={"contacts_sample": "false"}, expect=(400, 404))
        else:
            return
        if response.status_code in (400, 404):
            raise ListNotFound(f"SendGrid has no {kind} with id {list_id}.", platform=self.slug, status=response.status_code)

    async def members(self, list_id: str) -> AsyncIterator[Contact]:
        """Export the list, then stream every file it produced; suppressed addresses are skipped."""
        kind, ident = self._target(list_id)
        await self._ensure_exists(kind, ident, list_id)
        body: dict[str, Any] = {"file_type": self.option("export_format"), "notifications": {"email": False}}
        if kind == "list":
            body["list_ids"] = [ident]
        elif kind == "segment":
            body["segment_ids"] = [ident]
        # An export only reads, so a 403 here is a missing read scope, not a read-only key.
        job = (await self.http.request("POST", "v3/marketing/contacts/exports", json=body, write=False)).json()
        export_id = job.get("id")
        if not export_id:
            raise ConnectorError("SendGrid did not return the export job's id.", platform=self.slug)
        # The export runs on SendGrid's side while we page the suppressions.
        suppressed = await self._suppressed() if self.option("skip_suppressed") else frozenset()
        for url in await self._wait_for_export(str(export_id), list_id):
            async for contact_id, email in self._download(url):
                if email.lower() not in suppressed:
                    yield Contact(id=contact_id, email=email, list_id=list_id)

    async def _suppressed(self) -> frozenset[str]:
        """Every globally suppressed address, lower-cased; only these are held, never the list."""
        emails: set[str] = set()
        offset = 0
        while True:
            params = {"limit": SUPPRESSIONS_PAGE, "offset": offset}
            response = await self.http.request("GET", "v3/suppression/unsubscribes", params=params, expect=(403,))
            if response.status_code == 403:  # no Suppressions read scope: members are still readable
                log.warning("SendGrid key cannot read global suppressions; members are not filtered by them")
                return frozenset()
            page = response.json()
            if not isinstance(page, list):
                break
            emails.update(str(item.get("email", "")).lower() for item in page if isinstance(item, dict))
            if len(page) < SUPPRESSIONS_PAGE:
                break
            offset += SUPPRESSIONS_PAGE
        return frozenset(emails)

    async def _wait_for_export(self, export_id: str, list_id: str) -> list[str]:
        """Poll with a growing interval until `ready` or `failure`, within a bounded total wait."""

        async def check() -> list[str] | None:
            job = (await self.http.request("GET", f"v3/marketing/contacts/exports/{export_id}")).json()
            status = job.get("status")
            if status == "failure":
                reason = str(job.get("message") or "no reason given").rstrip(".")
                raise ConnectorError(f"SendGrid could not export {list_id}: {reason}.", platform=self.slug)
            return [str(url) for url in job.get("urls") or []] if status == "ready" else None

        urls = await poll(check, interval=float(self.option("export_poll_interval")), timeout=float(self.option("export_max_wait")),
                          max_interval=float(self.option("export_poll_max_interval")))
        if urls is None:
            raise PlatformUnavailable(f"SendGrid did not finish exporting {list_id} in time; try again later.", platform=self.slug)
        return urls

    async def _download(self, url: str) -> AsyncIterator[tuple[str, str]]:
        """Stream one export file: a pre-signed S3 URL, fetched without our Authorization header
        (S3 refuses a second auth mechanism, and the key must never leave SendGrid's API host).
        PlatformHttp.stream retries it and resumes a broken transfer where it stopped."""
        async for row in export_rows(self.http.stream(url, auth=False, headers={"Accept": "*/*"})):
            yield row

    # --- writing: global suppressions and deletion only ---------------------------------------
    async def unsubscribe(self, contacts: Sequence[Contact]) -> ActionOutcome:
        """Global suppression by email, batched; an address already suppressed is simply done."""
        outcome = ActionOutcome()
        by_email: dict[str, list[str]] = {}
        for contact in contacts:
            email = (contact.email or "").strip().lower()
            if not EMAIL_RE.match(email):  # the spec wants `format: email`; never send it anything else
                outcome.failed[contact.id] = "SendGrid suppresses by email address, and this contact has no valid one."
                continue
            by_email.setdefault(email, []).append(contact.id)
        for batch in _chunks(list(by_email), SUPPRESS_BATCH):
            response = await self.http.request("POST", "v3/asm/suppressions/global", json={"recipient_emails": batch}, expect=(400,))
            if response.status_code < 300:
                outcome.done.extend(cid for email in batch for cid in by_email[email])
                continue
            for email in batch:  # one bad address fails the batch; find it and keep the rest
                single = await self.http.request("POST", "v3/asm/suppressions/global", json={"recipient_emails": [email]}, expect=(400,))
                for cid in by_email[email]:
                    if single.status_code < 300:
                        outcome.done.append(cid)
                    else:
                        outcome.failed[cid] = "SendGrid refused to suppress this address."
        return outcome

    async def resubscribe(self, contacts: Sequence[Contact]) -> ActionOutcome:
        """Remove the global suppression; one call per address (no batch delete for it)."""
        outcome = ActionOutcome()
        for contact in contacts:
            email = (contact.email or "").strip().lower()
            if "@" not in email:
                outcome.failed[contact.id] = "SendGrid suppresses by email address, and this contact has none."
                continue
            await self.http.request("DELETE", f"v3/asm/suppressions/global/{quote(email, safe='@')}", expect=(404,))
            outcome.done.append(contact.id)
        return outcome

    async def delete(self, contacts: Sequence[Contact], *, permanent: bool = False) -> ActionOutcome:
        """Deletion jobs of up to 100 ids, confirmed through GET /v3/marketing/contacts/imports/{id}.

        SendGrid's delete is always permanent, so `permanent` changes nothing.
        """
        outcome = ActionOutcome()
        ids: list[str] = []
        for contact in contacts:
            if UUID_RE.match(contact.id or ""):
                if contact.id not in ids:
                    ids.append(contact.id)
            else:
                outcome.failed[contact.id] = "This is not a SendGrid contact id."
        jobs: dict[str, list[str]] = {}
        for batch in _chunks(ids, DELETE_BATCH):
            await self._start_delete(batch, jobs, outcome)
        await self._confirm_jobs(jobs, outcome)
        return outcome

    async def _start_delete(self, batch: list[str], jobs: dict[str, list[str]], outcome: ActionOutcome) -> None:
        response = await self.http.request("DELETE", "v3/marketing/contacts", params={"ids": ",".join(batch)}, expect=(400, 404))
        if response.status_code in (400, 404):
            if len(batch) > 1:  # one unknown or refused id may fail the batch; settle them one by one
                for cid in batch:
                    await self._start_delete([cid], jobs, outcome)
            elif response.status_code == 404:
                outcome.done.append(batch[0])  # already gone
            else:
                outcome.failed[batch[0]] = "SendGrid refused to delete this contact."
            return
        job_id = response.json().get("job_id")
        if job_id is None:
            raise ConnectorError("SendGrid did not return the delete job's id.", platform=self.slug)
        jobs[str(job_id)] = batch  # the spec types job_id as an object; SendGrid sends a string

    async def _confirm_jobs(self, jobs: dict[str, list[str]], outcome: ActionOutcome) -> None:
        pending = dict(jobs)

        async def check() -> bool | None:
            for job_id in list(pending):
                job = (await self.http.request("GET", f"v3/marketing/contacts/imports/{job_id}")).json()
                status = job.get("status")
                if status not in JOB_FINISHED:
                    continue
                batch = pending.pop(job_id)
                if status == JOB_DONE:
                    outcome.done.extend(batch)
                else:  # errored/failed: the errors file names no ids we can map, so retry the batch later
                    for cid in batch:
                        outcome.failed[cid] = f"SendGrid's delete job {job_id} {status}; try again."
            return True if not pending else None

        if pending and await poll(check, interval=float(self.option("export_poll_interval")), timeout=float(self.option("delete_wait")),
                                  max_interval=float(self.option("export_poll_max_interval"))) is None:
            # Accepted and queued by SendGrid, which will finish it; repeating a delete is harmless.
            log.info("SendGrid delete jobs still pending after the wait: %s", ", ".join(pending))
            outcome.done.extend(cid for batch in pending.values() for cid in batch)

    # --- verify-first: polling, since SendGrid has no new-subscriber webhook ---------------------
    async def contacts_since(self, since: datetime | None) -> AsyncIterator[Contact]:
        """Contacts created after `since`, oldest first, each with `created_at` for the high-water mark.

        The SGQL search returns at most 50 contacts plus the total `contact_count`, so a window
        that holds more is halved until each half fits. SGQL timestamps have whole seconds: more
        than 50 contacts created within one second cannot all be fetched (a warning is logged).
        """
        now = datetime.now(timezone.utc)
        if since is None:  # no mark yet: start a bounded while back rather than at the account's birth
            since = now - timedelta(seconds=float(self.option("initial_lookback")))
        since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
        low = since.astimezone(timezone.utc).replace(microsecond=0)
        high = now.replace(microsecond=0) + timedelta(seconds=1)
        windows: list[tuple[datetime, datetime | None]] = [(low, None)]  # the usual poll: one unbounded query
        while windows:
            start, end = windows.pop()
            found, complete = await self._search(start, end)
            span = (end or high) - start
            if not complete and span > timedelta(seconds=1):
                middle = start + timedelta(seconds=span.total_seconds() // 2)
                windows.append((middle, end or high))
                windows.append((start, middle))  # popped first: oldest window first
                continue
            if not complete:
                log.warning("SendGrid has more than %d contacts created in the second before %s; some are skipped", SEARCH_LIMIT, end)
            for contact in _ascending(found, since):
                yield contact

    async def _search(self, start: datetime, end: datetime | None) -> tuple[list[Contact], bool]:
        """Contacts with start < created_at (<= end); complete is False when SendGrid held some back."""
        query = f"created_at > TIMESTAMP '{_sgql_time(start)}'"
        if end is not None:
            query += f" AND created_at <= TIMESTAMP '{_sgql_time(end)}'"
        # A search only reads, so a 403 here is a missing read scope, not a read-only key.
        body = (await self.http.request("POST", "v3/marketing/contacts/search", json={"query": query}, write=False)).json()
        found: list[Contact] = []
        for item in body.get("result") or []:
            email = str(item.get("email") or "").strip()
            if not email or not item.get("id"):
                continue  # a phone-only contact has no address to verify
            found.append(Contact(id=str(item["id"]), email=email, created_at=_parse_time(item.get("created_at"))))
        total = body.get("contact_count")
        complete = total is None or int(total) <= len(body.get("result") or [])
        return found, complete

    async def aclose(self) -> None:
        """Shares the process-wide HTTP client; nothing of its own to close."""


# --- helpers -------------------------------------------------------------------------------
def _first_message(body: Any) -> str | None:
    """SendGrid's `{"errors": [{"field": ..., "message": ...}]}`, first message only."""
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        first = body["errors"][0]
        if isinstance(first, dict) and first.get("message"):
            return str(first["message"])[:200].rstrip(".")
    return None


def _page_token(next_url: Any) -> str | None:
    if not next_url or not isinstance(next_url, str):
        return None
    values = parse_qs(urlsplit(next_url).query).get("page_token") or []
    return values[0] if values and values[0] else None


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _sgql_time(moment: datetime) -> str:
    """SGQL's timestamp literal: ISO 8601 to the second, in UTC."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _ascending(found: list[Contact], since: datetime) -> list[Contact]:
    """Oldest first, strictly after `since` (the window's lower bound was rounded down to the second)."""
    kept = [c for c in found if c.created_at is None or c.created_at > since]
    return sorted(kept, key=lambda c: (c.created_at or since, c.id))


async def _gunzipped(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Pass bytes through, gunzipping them when they start with the gzip magic number.

    Export files are gzip without a Content-Encoding header (httpx already undoes one that is
    set); some exports arrive uncompressed, so the bytes decide, not the URL.
    """
    head = b""
    source = chunks.__aiter__()
    async for chunk in source:
        head += chunk
        if len(head) >= 2:
            break
    if head[:2] != b"\x1f\x8b":
        if head:
            yield head
        async for chunk in source:
            yield chunk
        return
    decompressor = zlib.decompressobj(wbits=31)

    def feed(data: bytes) -> bytes:
        nonlocal decompressor
        out = b""
        while data:
            out += decompressor.decompress(data)
            if not decompressor.eof:
                break
            data = decompressor.unused_data  # a second gzip member follows
            decompressor = zlib.decompressobj(wbits=31)
        return out

    try:
        yield feed(head)
        async for chunk in source:
            out = feed(chunk)
            if out:
                yield out
        yield decompressor.flush()
    except zlib.error:
        raise ConnectorError("SendGrid's export file is not valid gzip.", platform="sendgrid") from None


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """Decoded text lines, without line endings, holding at most one partial line."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    tail = ""
    async for chunk in chunks:
        text = tail + decoder.decode(chunk)
        *complete, tail = text.split("\n")
        for line in complete:
            yield line.rstrip("\r")
    tail += decoder.decode(b"", final=True)
    if tail.rstrip("\r"):
        yield tail.rstrip("\r")


async def export_rows(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, str]]:
    """(contact id, email) from an export file, CSV with a header row or JSON lines, incrementally.

    CSV columns are matched case-insensitively (`CONTACT_ID`, `EMAIL`); JSON lines carry
    `contact_id` (not `id`) and `email`. Rows without an email (phone-only contacts) are skipped.
    """
    lines = _lines(_gunzipped(chunks))
    columns: tuple[int, int] | None = None
    pending: list[str] = []
    quotes = 0
    is_json: bool | None = None
    async for line in lines:
        if is_json is None:
            if not line.strip():
                continue
            is_json = line.lstrip().startswith("{")
        if is_json:
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError:
                raise ConnectorError("SendGrid's export file has a line that is not JSON.", platform="sendgrid") from None
            contact_id, email = item.get("contact_id") or item.get("id"), item.get("email")
            if contact_id and email:
                yield str(contact_id), str(email).strip()
            continue
        # CSV: a quoted field may hold newlines, so a record ends where the quotes balance.
        pending.append(line)
        quotes += line.count('"')
        if quotes % 2:
            continue
        record = "\n".join(pending)
        pending.clear()
        quotes = 0
        if not record.strip():
            continue
        row = next(csv.reader([record]))
        if columns is None:
            names = [name.strip().lower() for name in row]
            try:
                columns = (names.index("contact_id"), names.index("email"))
            except ValueError:
                raise ConnectorError("SendGrid's export file has no CONTACT_ID and EMAIL columns.", platform="sendgrid") from None
            continue
        id_at, email_at = columns
        if len(row) > max(id_at, email_at) and row[id_at] and row[email_at].strip():
            yield row[id_at], row[email_at].strip()
    if pending:
        raise ConnectorError("SendGrid's export file ends inside a quoted field.", platform="sendgrid")
