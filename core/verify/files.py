"""Address files in and out: plain text (one address per line) or CSV with an email column.

Used by `listwarden verify -i`, Slack's "Verify this file" and the REST API's CSV jobs. Every
input row comes out as exactly one output row, in order, with all its columns kept and the
result columns appended; bytes that are not UTF-8 survive the round trip untouched.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from core.verify.result import Result

RESULT_COLUMNS = ("status", "score", "classifier", "flags", "suggestion", "smtp_code", "smtp_message", "mx_host")
EMAIL_HEADERS = ("email", "e-mail", "email address", "email_address", "emailaddress", "e_mail", "mail",
                 "email addresses", "address", "subscriber", "contact email", "work email", "primary email")
DELIMITERS = ",;\t|"
SNIFF_ROWS = 50
csv.field_size_limit(16 * 1024 * 1024)  # a giant field is an invalid address, not a crash


class FileFormatError(Exception):
    """The file cannot be read as addresses; the message says why in one sentence.

    `needs_column` is set when naming the address column would fix it (each transport says how:
    `--column` on the command line, `?column=` over the API)."""

    def __init__(self, message: str, *, needs_column: bool = False) -> None:
        super().__init__(message)
        self.needs_column = needs_column


@dataclass
class AddressTable:
    header: list[str] | None  # None for a plain list of addresses
    email_column: int
    delimiter: str
    rows: Iterator[list[str]]
    kind: str  # "txt" or "csv"

    def output_header(self) -> list[str]:
        base = self.header if self.header is not None else ["email"]
        return [*base, *RESULT_COLUMNS]

    def addresses(self, pending: Any) -> Iterator[str]:
        """The email cell of each row; each row is also appended to `pending` (a deque) for pairing."""
        for row in self.rows:
            pending.append(row)
            yield row[self.email_column] if self.email_column < len(row) else ""


def _lines(stream: IO[bytes]) -> Iterator[str]:
    """Decode line by line: UTF-8 (BOM skipped), undecodable bytes kept as surrogates, NUL made visible."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="surrogateescape")
    pending = ""
    while chunk := stream.read(64 * 1024):
        pending += decoder.decode(chunk)
        lines = pending.splitlines(keepends=True)
        pending = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
        for line in lines:
            yield line.replace("\x00", "\ufffd")
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending.replace("\x00", "\ufffd")


def _normal(name: str) -> str:
    return name.strip().strip('"').lower().replace("_", " ").replace("-", " ")


def _find_header_column(header: list[str], column: str | None) -> int | None:
    names = [_normal(h) for h in header]
    if column is not None:
        wanted = _normal(column)
        return names.index(wanted) if wanted in names else None
    for known in EMAIL_HEADERS:
        norm = _normal(known)
        if norm in names:
            return names.index(norm)
    return None


def open_address_file(stream: IO[bytes], *, filename: str = "", column: str | None = None) -> AddressTable:
    """Look at the start of the file, decide its shape, and return a lazy table of its rows."""
    lines = _lines(stream)
    head: list[str] = []
    for line in lines:
        head.append(line)
        if len(head) > SNIFF_ROWS:
            break
    if not head:
        raise FileFormatError(f"{filename or 'The input'} is empty: there are no addresses to verify.")
    first = head[0].rstrip("\r\n")
    lower = filename.lower()
    delimiter = _delimiter(first)
    header_cells = next(csv.reader([first], delimiter=delimiter)) if delimiter else [first]
    looks_like_header = delimiter is not None and _find_header_column(header_cells, column) is not None
    is_csv = lower.endswith((".csv", ".tsv")) or looks_like_header or (column is not None and delimiter is not None)

    def all_lines() -> Iterator[str]:
        yield from head
        yield from lines

    if not is_csv:
        if column is not None and _normal(first) != _normal(column):
            raise FileFormatError(f"--column {column} was given, but the input is a plain list of addresses, not a CSV.")
        rows = ([line.rstrip("\r\n")] for line in all_lines())
        return AddressTable(None, 0, ",", rows, "txt")

    delimiter = delimiter or ("\t" if lower.endswith(".tsv") else ",")
    reader = csv.reader(all_lines(), delimiter=delimiter)
    try:
        first_row = next(reader)
    except csv.Error as exc:
        raise FileFormatError(f"{filename or 'The input'} is not a readable CSV: {exc}.") from None
    index = _find_header_column(first_row, column)
    if index is not None:
        rows = _safe_rows(reader, filename)
        first_data = next(rows, None)
        if first_data is None:
            raise FileFormatError(f"{filename or 'The input'} has a header but no addresses.")
        return AddressTable(first_row, index, delimiter, _chain([first_data], rows), "csv")
    if column is not None:
        raise FileFormatError(
            f"No column named {column!r} in {filename or 'the input'}; its columns are: {', '.join(first_row)}.",
            needs_column=True,
        )
    # No known header name: a headerless CSV has an address in its first row; else look for an @ column.
    at_cells = [i for i, cell in enumerate(first_row) if "@" in cell]
    if at_cells:
        names = [f"column_{i + 1}" for i in range(len(first_row))]
        names[at_cells[0]] = "email"
        return AddressTable(names, at_cells[0], delimiter, _chain([first_row], _safe_rows(reader, filename)), "csv")
    sample = [next(csv.reader([line], delimiter=delimiter), []) for line in head[1:]]
    counts = [sum(1 for row in sample if i < len(row) and "@" in row[i]) for i in range(len(first_row))]
    if counts and max(counts) * 2 > len(sample) > 0:
        return AddressTable(first_row, counts.index(max(counts)), delimiter, _safe_rows(reader, filename), "csv")
    raise FileFormatError(
        f"No email column found in {filename or 'the input'} (columns: {', '.join(first_row)}); "
        "name it 'email' or say which column holds the addresses.",
        needs_column=True,
    )


def _delimiter(line: str) -> str | None:
    counts = {d: line.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else None


def _chain(*parts: Any) -> Iterator[list[str]]:
    for part in parts:
        yield from part


def _safe_rows(reader: Any, filename: str) -> Iterator[list[str]]:
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # one broken line becomes one row with a clear message, not a crash
            yield [f"unreadable CSV line {reader.line_num}: {exc}"]
            continue
        yield row


def result_cells(result: Result) -> list[str]:
    return [
        str(result.status),
        str(result.score),
        str(result.classifier),
        "|".join(result.flags),
        result.suggestion or "",
        "" if result.smtp_code is None else str(result.smtp_code),
        result.smtp_message or "",
        result.mx_host or "",
    ]


class ResultWriter:
    """Writes CSV (input columns + result columns) or JSON lines, to a text stream."""

    def __init__(self, out: IO[str], table: AddressTable, fmt: str = "csv") -> None:
        self.table = table
        self.fmt = fmt
        self.out = out
        self._csv = csv.writer(out, delimiter=table.delimiter if fmt == "csv" else ",", lineterminator="\n")
        if fmt == "csv":
            self._csv.writerow(table.output_header())

    def write(self, row: list[str], result: Result) -> None:
        if self.fmt == "csv":
            width = len(self.table.header) if self.table.header is not None else 1
            cells = (row + [""] * width)[:width] if len(row) < width else row
            self._csv.writerow([*cells, *result_cells(result)])
            return
        record: dict[str, Any] = {}
        if self.table.header is not None:
            record.update({name: row[i] if i < len(row) else "" for i, name in enumerate(self.table.header)})
        record["email"] = result.email
        data = result.to_dict()
        data.pop("email", None)
        record.update(data)
        # ensure_ascii keeps the line valid JSON even for undecodable input bytes
        self.out.write(json.dumps(record, ensure_ascii=True) + "\n")


def text_output(binary: IO[bytes]) -> io.TextIOWrapper:
    """A text stream that writes undecodable input bytes back exactly as they came."""
    return io.TextIOWrapper(binary, encoding="utf-8", errors="surrogateescape", newline="", write_through=False)
