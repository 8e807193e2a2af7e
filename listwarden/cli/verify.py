"""`listwarden verify`: addresses on the command line, or a whole TXT/CSV file streamed through."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter, deque
from pathlib import Path
from collections.abc import Coroutine
from typing import IO, Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.settings import get_settings
from core.verify import ConfigurationError, Result, Verifier, VerifierConfig
from core.verify.files import FileFormatError, ResultWriter, open_address_file, text_output
from core.verify.status import STATUS_TABLE

err = Console(stderr=True)


def _config(smtp: bool) -> VerifierConfig:
    return VerifierConfig.from_settings(get_settings(), smtp=smtp)


@click.command()
@click.argument("addresses", nargs=-1)
@click.option("-i", "--input", "input_path", type=click.Path(dir_okay=False, allow_dash=True),
              help="TXT (one address per line) or CSV file to verify; '-' reads stdin.")
@click.option("-o", "--output", "output_path", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              show_default=True, help="Where the results go; '-' is stdout.")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True,
              help="Output format for -i.")
@click.option("--column", help="The CSV column holding the addresses (found automatically otherwise).")
@click.option("--json", "as_json", is_flag=True, help="Print the results of ADDRESSES as JSON.")
@click.option("--smtp/--no-smtp", default=True, show_default=True, help="Probe mailboxes over SMTP, or stop at DNS.")
def verify(addresses: tuple[str, ...], input_path: str | None, output_path: str, fmt: str, column: str | None,
           as_json: bool, smtp: bool) -> None:
    """Verify ADDRESSES, or every address of a file (-i), keeping the file's rows and columns.

    The SMTP identity comes from LISTWARDEN_MAIL_FROM and LISTWARDEN_HELO_NAME.
    """
    if not addresses and not input_path:
        raise click.UsageError("Give addresses to verify, or a file with -i FILE.")
    if addresses and input_path:
        raise click.UsageError("Give either addresses or -i FILE, not both.")
    try:
        if input_path:
            code = _run(_verify_file(input_path, output_path, fmt, column, smtp))
        else:
            code = _run(_verify_addresses(list(addresses), as_json, smtp))
    except ConfigurationError as exc:
        err.print(f"[red]Configuration error:[/red] {exc}")
        sys.exit(2)
    except FileFormatError as exc:
        hint = " Use --column NAME." if exc.needs_column else ""
        err.print(f"[red]Cannot read the input:[/red] {exc}{hint}", highlight=False)
        sys.exit(1)
    except OSError as exc:
        err.print(f"[red]{exc.strerror or exc}:[/red] {exc.filename or ''}")
        sys.exit(1)
    sys.exit(code)


def _run(coro: Coroutine[Any, Any, int]) -> int:
    """uvloop where installed (it comes with uvicorn[standard]): the verifier is event-loop bound."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


async def _start(smtp: bool) -> Verifier:
    verifier = Verifier(_config(smtp))
    if smtp:
        await verifier.check_identity()
    return verifier


async def _verify_addresses(addresses: list[str], as_json: bool, smtp: bool) -> int:
    verifier = await _start(smtp)
    results = [r async for r in verifier.verify_many(addresses)]
    await verifier.aclose()
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2))
        return 0
    table = Table("address", "status", "score", "classifier", "flags", "reason")
    for r in results:
        table.add_row(r.email, f"{STATUS_TABLE[r.status].emoji} {r.status}", str(r.score), str(r.classifier),
                      " ".join(r.flags), r.reason + (f" Suggestion: {r.suggestion}" if r.suggestion and r.suggestion not in r.reason else ""))
    Console(emoji=True).print(table)
    return 0


def _open_in(path: str) -> IO[bytes]:
    return sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115 - closed by the caller


def _count_lines(path: str) -> int | None:
    if path == "-":
        return None
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


async def _verify_file(input_path: str, output_path: str, fmt: str, column: str | None, smtp: bool) -> int:
    verifier = await _start(smtp)
    source = _open_in(input_path)
    name = "stdin" if input_path == "-" else Path(input_path).name
    started = time.monotonic()
    counts: Counter[str] = Counter()
    try:
        table = open_address_file(source, filename=name, column=column)
        out_binary = sys.stdout.buffer if output_path == "-" else open(output_path, "wb")  # noqa: SIM115
        out = text_output(out_binary)
        try:
            writer = ResultWriter(out, table, fmt)
            pending: deque[list[str]] = deque()
            total = _count_lines(input_path) if err.is_terminal else None
            with _progress(total) as (progress, task):
                async for result in verifier.verify_many(table.addresses(pending)):
                    writer.write(pending.popleft(), result)
                    counts[str(result.status)] += 1
                    if progress is not None:
                        progress.advance(task)
        finally:
            out.flush()
            if output_path != "-":
                out.close()
            else:
                out.detach()
    finally:
        if source is not sys.stdin.buffer:
            source.close()
        await verifier.aclose()
    elapsed = time.monotonic() - started
    summary = " · ".join(f"{status} {counts[status]:,}" for status in STATUS_TABLE if counts[status])
    err.print(f"Verified {sum(counts.values()):,} rows in {elapsed:.1f} s: {summary or 'nothing'}", highlight=False)
    return 0


class _progress:
    """A rich progress bar on stderr when it is a terminal; nothing otherwise."""

    def __init__(self, total: int | None) -> None:
        self.bar = (
            Progress(TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err)
            if err.is_terminal else None
        )
        self.total = total

    def __enter__(self):  # type: ignore[no-untyped-def]
        if self.bar is None:
            return None, None
        self.bar.start()
        return self.bar, self.bar.add_task("verify", total=self.total)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
