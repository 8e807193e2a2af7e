"""Reading RCPT replies: code first, then enhanced status code, then text; a 4xx is never a verdict."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.verify.replies import ReplyKind, classify


@pytest.mark.parametrize("code,text,kind", [
    (250, "2.1.5 Ok", ReplyKind.ACCEPTED),
    (251, "User not local; will forward", ReplyKind.ACCEPTED),
    (550, "5.1.1 <x@y>: Recipient address rejected: User unknown in local recipient table", ReplyKind.NO_SUCH_USER),
    (550, "5.1.1 The email account that you tried to reach does not exist. Please try\n5.1.1 double-checking",
     ReplyKind.NO_SUCH_USER),  # Gmail, multi-line
    (550, "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", ReplyKind.NO_SUCH_USER),
    (550, "5.5.0 Requested action not taken: mailbox unavailable (abc)", ReplyKind.NO_SUCH_USER),  # Outlook.com
    (554, "delivery error: dd This user doesn't have a yahoo.com account (x@yahoo.com) [0]", ReplyKind.NO_SUCH_USER),
    (550, "5.2.1 <x@y>: Recipient address rejected: Mailbox disabled", ReplyKind.DISABLED),
    (554, "delivery error: dd Sorry, your message cannot be delivered. This mailbox is disabled (554.30).",
     ReplyKind.DISABLED),
    (552, "5.2.2 <x@y>: Mailbox full", ReplyKind.FULL),
    (452, "4.2.2 Mailbox full, try later", ReplyKind.FULL),
    (550, "5.7.1 Service unavailable; client host [1.2.3.4] blocked using zen.spamhaus.org", ReplyKind.POLICY),
    (554, "5.7.1 <x@y>: Relay access denied", ReplyKind.POLICY),
    (550, "Mailbox unavailable: your IP address is on a blocklist", ReplyKind.POLICY),  # no code: words decide
    (553, "5.1.8 <s@z>: Sender address rejected: Domain not found", ReplyKind.POLICY),
    (553, "5.6.7 <josé@y>: non-ASCII address requires SMTPUTF8", ReplyKind.NEEDS_SMTPUTF8),
    (451, "4.7.1 <x@y>: Recipient address rejected: Greylisted, try again in 5 seconds", ReplyKind.GREYLISTED),
    (450, "4.2.0 <x@y>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/", ReplyKind.GREYLISTED),
    (451, "Please try later", ReplyKind.GREYLISTED),
    (451, "4.3.0 <x@y>: Temporary lookup failure", ReplyKind.TEMPORARY),
    (452, "4.5.3 Error: too many recipients", ReplyKind.TOO_MANY_RECIPIENTS),
    (421, "4.7.0 Try again later, closing connection.", ReplyKind.CLOSING),
    (550, "Rejected", ReplyKind.UNCLEAR),
])
def test_reply_meanings(code, text, kind):
    assert classify(code, text).kind is kind


def test_greylisting_hint_is_read():
    assert classify(451, "4.7.1 Greylisted, try again in 300 seconds").retry_after == 300


def test_enhanced_code_that_contradicts_the_reply_code_is_ignored():
    """A 450 that carries 5.1.1 is still temporary: the reply code comes first."""
    assert classify(450, "5.1.1 user unknown").kind not in (ReplyKind.NO_SUCH_USER, ReplyKind.DISABLED)


@given(st.integers(min_value=400, max_value=499), st.text(max_size=200))
def test_a_4xx_is_never_a_verdict(code, text):
    assert classify(code, text).kind not in (ReplyKind.NO_SUCH_USER, ReplyKind.DISABLED, ReplyKind.SYNTAX,
                                             ReplyKind.ACCEPTED)


@given(st.integers(min_value=200, max_value=599), st.text(max_size=300))
def test_any_reply_is_classified_without_error(code, text):
    reply = classify(code, text)
    assert reply.code == code and isinstance(reply.kind, ReplyKind)
