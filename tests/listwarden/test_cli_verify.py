"""`listwarden verify` as a user runs it: a real subprocess against loopback DNS and SMTP servers.

Whatever the input, every row comes back exactly once, in order, with its columns kept; bad input
gets a clear sentence and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest

from tests.mailservers import MailWorld

COLUMNS = ["status", "score", "classifier", "flags", "suggestion", "smtp_code", "smtp_message", "mx_host"]


@pytest.fixture(scope="module")
def world():
    w = MailWorld()
    w.domain("acme.example", mx=[w.smtp_host(mailboxes={"ann@acme.example", "bo@acme.example"})])
    with w.running():
        yield w


def run(world, *args, stdin: bytes | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **world.env(), **(env or {})}
    return subprocess.run([sys.executable, "-m", "listwarden", "verify", *args], input=stdin,
                          capture_output=True, env=full_env, timeout=60)


def rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8", errors="surrogateescape"))))


def test_addresses_on_the_command_line_as_json(world):
    done = run(world, "ann@acme.example", "nope@acme.example", "--json")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert [(r["email"], r["status"]) for r in results] == [("ann@acme.example", "valid"), ("nope@acme.example", "invalid")]


def test_addresses_on_the_command_line_as_a_table(world):
    done = run(world, "ann@acme.example")
    assert done.returncode == 0 and b"ann@acme.example" in done.stdout and b"valid" in done.stdout


def test_plain_list_streams_to_csv_one_row_per_line_in_order(world, tmp_path):
    lines = ["ann@acme.example", "nope@acme.example", "no-at-sign", "ANN@ACME.EXAMPLE", "bo@acme.example"]
    source = tmp_path / "list.txt"
    source.write_text("\n".join(lines) + "\n")
    done = run(world, "-i", str(source))
    assert done.returncode == 0, done.stderr
    out = rows(done.stdout)
    assert [r["email"] for r in out] == lines
    assert [r["status"] for r in out] == ["valid", "invalid", "invalid", "valid", "valid"]
    assert list(out[0]) == ["email", *COLUMNS]
    assert "invalid_syntax" in out[2]["flags"]
    assert b"Verified 5 rows" in done.stderr


def test_csv_keeps_every_column_and_finds_the_email_column(world, tmp_path):
    source = tmp_path / "export.csv"
    source.write_text('First Name,Email Address,Plan\nAnn,ann@acme.example,"gold, yearly"\nNo,nope@acme.example,free\n')
    done = run(world, "-i", str(source), "-o", str(tmp_path / "out.csv"))
    assert done.returncode == 0, done.stderr
    out = rows((tmp_path / "out.csv").read_bytes())
    assert list(out[0]) == ["First Name", "Email Address", "Plan", *COLUMNS]
    assert [(r["First Name"], r["Plan"], r["status"]) for r in out] == [("Ann", "gold, yearly", "valid"), ("No", "free", "invalid")]


def test_named_column_and_jsonl_output(world, tmp_path):
    source = tmp_path / "two.csv"
    source.write_text("work,home\nann@acme.example,x@other.example\n")
    done = run(world, "-i", str(source), "--column", "work", "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    [record] = [json.loads(line) for line in done.stdout.splitlines()]
    assert record["work"] == "ann@acme.example" and record["home"] == "x@other.example" and record["status"] == "valid"


def test_csv_without_an_email_column_is_a_clear_error(world, tmp_path):
    source = tmp_path / "names.csv"
    source.write_text("first,last\nann,smith\nbo,jones\n")
    done = run(world, "-i", str(source))
    assert done.returncode == 1
    assert b"No email column found" in done.stderr and b"--column" in done.stderr
    assert b"Traceback" not in done.stderr


def test_unknown_column_names_the_columns_there_are(world, tmp_path):
    source = tmp_path / "x.csv"
    source.write_text("email,plan\nann@acme.example,free\n")
    done = run(world, "-i", str(source), "--column", "mail_addr")
    assert done.returncode == 1 and b"email, plan" in done.stderr


def test_csv_with_a_header_and_no_rows_is_a_clear_message(world, tmp_path):
    source = tmp_path / "header-only.csv"
    source.write_text("email,name\n")
    done = run(world, "-i", str(source))
    assert done.returncode == 1 and b"header but no addresses" in done.stderr


def test_empty_file_is_a_clear_message(world, tmp_path):
    source = tmp_path / "empty.txt"
    source.write_bytes(b"")
    done = run(world, "-i", str(source))
    assert done.returncode == 1 and b"empty" in done.stderr and b"Traceback" not in done.stderr


def test_hostile_lines_each_come_back_as_one_row(world, tmp_path):
    """No @, a 300-character local part, a NUL byte and invalid UTF-8: rows with invalid_syntax, none lost."""
    lines = [b"ann@acme.example", b"no-at-sign", b"x" * 300 + b"@acme.example", b"nul\x00@acme.example",
             b"bad\xff\xfe@acme.example", b"bo@acme.example"]
    source = tmp_path / "hostile.txt"
    source.write_bytes(b"\n".join(lines) + b"\n")
    done = run(world, "-i", str(source))
    assert done.returncode == 0, done.stderr
    out = rows(done.stdout)
    assert len(out) == len(lines)
    assert [r["status"] for r in out] == ["valid", "invalid", "invalid", "invalid", "invalid", "valid"]
    assert all("invalid_syntax" in r["flags"] for r in out[1:5])
    # the undecodable bytes are written back exactly as they came
    assert b"bad\xff\xfe@acme.example" in done.stdout


def test_stdin_to_stdout(world):
    done = run(world, "-i", "-", stdin=b"ann@acme.example\n")
    assert done.returncode == 0 and rows(done.stdout)[0]["status"] == "valid"


def test_a_sender_domain_that_does_not_resolve_stops_before_any_probe(world, tmp_path):
    done = run(world, "ann@acme.example", env={"LISTWARDEN_MAIL_FROM": "me@unregistered.example"})
    assert done.returncode == 2
    assert b"LISTWARDEN_MAIL_FROM" in done.stderr and b"Traceback" not in done.stderr


def test_missing_input_file_is_a_clear_error(world, tmp_path):
    done = run(world, "-i", str(tmp_path / "absent.txt"))
    assert done.returncode != 0 and b"Traceback" not in done.stderr
