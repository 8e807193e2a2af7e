"""Connector benchmark: stream 100,000 members from each platform's emulator, then unsubscribe some.

Run: .venv/bin/python -m bench.connectors [--members 100000] [--unsubscribes 2000] [--only mailchimp,brevo] [--json]

For each of the eight platforms the emulator is served by a process of its own on loopback, and
the connector runs in another fresh process, so the peak RSS reported (`ru_maxrss`) is the
client's alone and not inflated by the emulator or by the platforms measured before it. The
client's rate limits are lifted through `options` (rate_limit, endpoint_limits) and the
emulators enforce none of the platforms' limits either: this measures our code and the
emulators on loopback, not Klaviyo's 75/s or ActiveCampaign's 5/s. Mailchimp keeps its
10-connection cap, which its emulator enforces as Mailchimp does. Each emulator still checks
every request against the platform's spec where one exists; violations are reported.

Unsubscribes go through `unsubscribe()` exactly as a cleanup job calls it: batched where the
platform has a batch endpoint (Mailchimp 500, SendGrid 1,000, Brevo 100, Klaviyo 100 per job,
HubSpot 100 with Marketing Hub Enterprise scopes), one call each elsewhere. The "requests"
columns count what the emulator received.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PLATFORMS = ("mailchimp", "klaviyo", "hubspot", "brevo", "activecampaign", "mailerlite", "sendgrid", "convertkit")
STATS_PATH = "/__bench/stats"
RSS_TARGET_MB = 100

# Client options per platform, on top of the lifted limits.
CLIENT_OPTIONS: dict[str, dict[str, Any]] = {
    "sendgrid": {"export_poll_interval": 0.05, "export_poll_max_interval": 0.2, "delete_wait": 30.0},
    "klaviyo": {"count_cache_seconds": 0},
}
LIFTED = {"rate_limit": None, "endpoint_limits": None}


# --- the emulator process -------------------------------------------------------------------------
def _tune(slug: str, emu: Any) -> None:
    """Turn off the emulator's enforcement of the platform's own rate limits."""
    state = emu.state
    if slug == "klaviyo":
        state.tiers = dict.fromkeys(state.tiers)
    if slug == "convertkit":
        state.limit = None


def serve(slug: str, members: int, port: int) -> None:
    """Build the emulator, print how to reach it as one JSON line, and serve until terminated."""
    import importlib

    import uvicorn
    from starlette.responses import JSONResponse

    emu = importlib.import_module(f"tests.emulators.{slug}").build(members=members)
    _tune(slug, emu)
    counted = {"requests": 0}

    async def app(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == STATS_PATH:
            body = {"requests": counted["requests"], "violations": len(emu.violations.errors) if emu.violations else 0,
                    "first_violation": emu.violations.errors[0][:300] if emu.violations and emu.violations.errors else None}
            await JSONResponse(body)(scope, receive, send)
            return
        if scope["type"] == "http":
            counted["requests"] += 1
        await emu.app(scope, receive, send)

    url = f"http://127.0.0.1:{port}"
    print(json.dumps({"url": url, "credentials": emu.credentials(url), "list_id": emu.list_id}), flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False)


# --- the client process -----------------------------------------------------------------------------
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


async def _stats(client: Any, url: str) -> dict[str, Any]:
    return (await client.get(url + STATS_PATH)).json()


async def measure(slug: str, target: dict[str, Any], unsubscribes: int) -> dict[str, Any]:
    """Stream every member of the emulator's main list, then unsubscribe the first `unsubscribes`."""
    import httpx

    from core.connectors import get_platform
    from core.connectors.http import close_shared_client

    options = {**LIFTED, **CLIENT_OPTIONS.get(slug, {})}
    connector = get_platform(slug)(target["credentials"], base_url=target["url"], options=options)
    rss_before = _peak_rss_mb()
    async with httpx.AsyncClient(timeout=10) as probe:
        base = await _stats(probe, target["url"])
        started, seen, batch, emails = time.perf_counter(), 0, [], set()
        async for contact in connector.members(target["list_id"]):
            seen += 1
            if len(batch) < unsubscribes:
                batch.append(contact)
                emails.add(contact.email.lower())
        streamed = time.perf_counter() - started
        after_stream = await _stats(probe, target["url"])
        started = time.perf_counter()
        outcome = await connector.unsubscribe(batch)
        unsubscribed = time.perf_counter() - started
        after_unsub = await _stats(probe, target["url"])
    await close_shared_client()
    return {
        "platform": slug,
        "members": seen,
        "stream_seconds": round(streamed, 2),
        "members_per_s": round(seen / streamed) if streamed else None,
        "stream_requests": after_stream["requests"] - base["requests"],
        "unsubscribed": len(outcome.done),
        "unsubscribe_failed": len(outcome.failed),
        "unsubscribe_seconds": round(unsubscribed, 2),
        "unsubscribes_per_s": round(len(outcome.done) / unsubscribed) if unsubscribed else None,
        "unsubscribe_requests": after_unsub["requests"] - after_stream["requests"],
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "rss_before_mb": round(rss_before, 1),
        "violations": after_unsub["violations"],
        "first_violation": after_unsub["first_violation"],
    }


def client(slug: str, target_json: str, unsubscribes: int) -> None:
    result = asyncio.run(measure(slug, json.loads(target_json), unsubscribes))
    print(json.dumps(result), flush=True)


# --- the orchestrator -------------------------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_one(slug: str, members: int, unsubscribes: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "bench.connectors", "serve", slug, str(members), str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline() if server.stdout else ""
        if not line:
            raise RuntimeError(f"the {slug} emulator did not start")
        target = json.loads(line)
        import httpx

        for _ in range(500):  # wait until uvicorn answers
            try:
                httpx.get(target["url"] + STATS_PATH, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.02)
        done = subprocess.run([sys.executable, "-m", "bench.connectors", "client", slug, line.strip(), str(unsubscribes)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False)
        if done.returncode != 0:
            return {"platform": slug, "error": (done.stderr.strip().splitlines() or ["no output"])[-1][:300]}
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def table(results: list[dict[str, Any]]) -> str:
    head = ("platform", "members", "seconds", "members/s", "requests", "unsubscribed", "unsub/s", "unsub requests",
            "peak RSS MB", "spec violations")
    rows = [head]
    for r in results:
        if "error" in r:
            rows.append((r["platform"], "error: " + r["error"], *[""] * (len(head) - 2)))
            continue
        rows.append((r["platform"], f"{r['members']:,}", f"{r['stream_seconds']:.1f}", f"{r['members_per_s']:,}",
                     f"{r['stream_requests']:,}", f"{r['unsubscribed']:,}" + (f" ({r['unsubscribe_failed']} failed)" if r["unsubscribe_failed"] else ""),
                     f"{r['unsubscribes_per_s']:,}", f"{r['unsubscribe_requests']:,}", f"{r['peak_rss_mb']:.0f}",
                     str(r["violations"])))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    lines = ["  ".join(str(cell).rjust(w) if i else str(cell).ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "serve":
        serve(argv[1], int(argv[2]), int(argv[3]))
        return 0
    if argv and argv[0] == "client":
        client(argv[1], argv[2], int(argv[3]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.connectors", description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--unsubscribes", type=int, default=2_000)
    parser.add_argument("--only", help="comma-separated slugs")
    parser.add_argument("--json", action="store_true", help="print the results as JSON lines too")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",")] if args.only else list(PLATFORMS)
    results = []
    for slug in chosen:
        print(f"{slug}: streaming {args.members:,} members ...", file=sys.stderr, flush=True)
        results.append(run_one(slug, args.members, args.unsubscribes))
        if args.json:
            print(json.dumps(results[-1]), flush=True)
    print(table(results))
    worst = max((r.get("peak_rss_mb", 0) for r in results), default=0)
    print(f"\npeak client RSS {worst:.0f} MB (target <= {RSS_TARGET_MB} MB); "
          f"{sum(1 for r in results if 'error' in r)} errors; "
          f"{sum(r.get('violations', 0) for r in results)} spec violations")
    return 0 if all("error" not in r for r in results) and worst <= RSS_TARGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
