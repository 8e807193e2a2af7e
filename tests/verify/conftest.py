"""One loopback world for the verifier suites: a domain per behaviour the verifier must get right."""

from __future__ import annotations

import pytest

from tests.mailservers import MailWorld


def build_world() -> MailWorld:
    w = MailWorld()
    acme = w.smtp_host(name="mx.acme.example", mailboxes={
        "ann@acme.example": "ok", "info@acme.example": "ok", "full@acme.example": "full",
        "off@acme.example": "disabled", "josé@acme.example": "ok",
    })
    w.domain("acme.example", mx=[acme])
    w.domain("catchall.example", mx=[w.smtp_host(name="mx.catchall.example")], catch_all=True)
    # a big provider on a look-alike loopback: known not to be catch-all, so no probe is spent
    w.domain("gmail.com", mx=[w.smtp_host(name="gmail-smtp-in.l.google.com", flavour="gmail",
                                          mailboxes={f"user{i}@gmail.com" for i in range(40)})])
    w.domain("grey.example", mx=[w.smtp_host(name="mx.grey.example", greylist_s=1.0,
                                             mailboxes={"bob@grey.example"})])
    w.domain("tempfail.example", mx=[w.smtp_host(name="mx.tempfail.example", tempfail=True)])
    w.domain("policy.example", mx=[w.smtp_host(name="mx.policy.example", policy_block=True)])
    w.domain("yahoo-like.example", mx=[w.smtp_host(name="mta5.yahoo-like.example", flavour="yahoo",
                                                   mailboxes={"kim@yahoo-like.example"})])
    w.domain("outlook-like.example", mx=[w.smtp_host(name="mx.outlook-like.example", flavour="outlook",
                                                     mailboxes={"lee@outlook-like.example"})])
    w.domain("noutf8.example", mx=[w.smtp_host(name="mx.noutf8.example", smtputf8=False,
                                               mailboxes={"josé@noutf8.example", "jo@noutf8.example"})])
    w.domain("nopipe.example", mx=[w.smtp_host(name="mx.nopipe.example", pipelining=False,
                                               mailboxes={"a@nopipe.example", "b@nopipe.example"})])
    backup = w.smtp_host(name="mx2.backup.example", mailboxes={"sam@backup.example"})
    w.domain("backup.example", mx=[w.smtp_host(name="mx1.backup.example", mode="refused"), backup])
    w.domain("blackhole.example", mx=[w.smtp_host(name="mx.blackhole.example", mode="blackhole")])
    w.domain("refused.example", mx=[w.smtp_host(name="mx.refused.example", mode="refused")])
    w.domain("implicit.example", implicit=w.smtp_host(name="implicit.example", mailboxes={"pat@implicit.example"}))
    w.domain("mailinator.com", mx=[w.smtp_host(name="mx.mailinator.com")], catch_all=True)
    w.domain("gmai.com", mx=[w.smtp_host(name="mx.gmai.com", mailboxes={"real@gmai.com"})])  # real look-alike
    shared = w.smtp_host(name="mx.sharedhost.example",
                         mailboxes={f"u@site{i}.example" for i in range(3)})
    for i in range(3):
        w.domain(f"site{i}.example", mx=[shared])
    w.null_mx("nullmx.example")
    w.no_mail("nomail.example")
    w.servfail("servfail.example")
    w.silent("silent.example")
    w.zone.add("ghostmx.example", "MX", "10 ghost.nowhere.example.")  # MX host that does not exist
    return w


@pytest.fixture(scope="module")
def world():
    w = build_world()
    with w.running():
        yield w
