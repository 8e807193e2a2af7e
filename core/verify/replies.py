"""What an RCPT reply says about a mailbox: reply code first, then the enhanced status code
(RFC 3463), then the text.

The order matters because servers disagree on texts but rarely on codes: a 4xx is never a
verdict, a 5.7.x is about us (policy), not about the mailbox, and only a reply that plainly
says "no such user" (by code or by words) makes an address invalid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache


class ReplyKind(StrEnum):
    ACCEPTED = "accepted"
    NO_SUCH_USER = "no_such_user"
    DISABLED = "disabled"
    FULL = "full"
    POLICY = "policy"  # blocked for reputation, relay, sender or content reasons: says nothing of the mailbox
    GREYLISTED = "greylisted"
    TOO_MANY_RECIPIENTS = "too_many_recipients"
    CLOSING = "closing"  # 421: the server is shutting this session down
    TEMPORARY = "temporary"  # any other 4xx
    NEEDS_SMTPUTF8 = "needs_smtputf8"
    SYNTAX = "syntax"  # the server calls the address malformed
    UNCLEAR = "unclear"  # a permanent failure with no code or words we can read


@dataclass(frozen=True)
class Reply:
    code: int
    enhanced: str | None
    text: str
    kind: ReplyKind
    retry_after: float | None = None  # seconds, when the text says "try again in N seconds"

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")
_WAIT = re.compile(r"(?:try again|retry|wait)\D{0,20}?(\d{1,5})\s*(?:s\b|sec|second)", re.IGNORECASE)

_GREYLIST_WORDS = re.compile(
    r"grey ?list|gray ?list|try (?:again )?later|please retry|temporarily deferred|deferred", re.IGNORECASE
)
_POLICY_WORDS = re.compile(
    r"spam|\bblock|black ?list|deny ?list|reputation|policy|\brbl\b|dnsbl|spamhaus|barracuda|not permitted|"
    r"relay|client host|your ip|ip address|access denied|authenticat|dmarc|\bspf\b|dkim|rate limit|"
    r"sender (?:address|domain) rejected|too many connections",
    re.IGNORECASE,
)
_UNKNOWN_USER_WORDS = re.compile(
    r"no such (?:user|mailbox|recipient|address|account)|user(?:name)? (?:unknown|not found|does not exist)|"
    r"unknown (?:user|recipient|mailbox|address)|recipient (?:unknown|not found|does not exist)|"
    r"mailbox (?:unavailable|not found|does not exist|unknown|invalid)|address (?:unknown|not found|does not exist)|"
    r"invalid (?:recipient|mailbox|address|user)|does not exist|doesn'?t (?:exist|have an? \S+ account)|"
    r"not a valid (?:mailbox|recipient|user)|no mailbox|account (?:does not exist|not found|unknown)|"
    r"undeliverable address|recipientnotfound|user not local|not our customer",
    re.IGNORECASE,
)
_DISABLED_WORDS = re.compile(r"disabled|deactivated|suspended|inactive|account (?:is )?closed|no longer", re.IGNORECASE)
_FULL_WORDS = re.compile(r"over ?quota|quota exceeded|mailbox (?:is )?full|insufficient (?:storage|space)", re.IGNORECASE)


def _kind_from_enhanced(klass: str, subject: str, detail: str) -> ReplyKind | None:
    code = f"{subject}.{detail}"
    if klass == "2":
        return ReplyKind.ACCEPTED
    if subject == "7":
        return ReplyKind.POLICY  # 5.7.x / 4.7.x: security or policy status, about us not the mailbox
    if code in ("1.1", "1.10", "1.6"):  # bad destination mailbox; Exchange's RecipientNotFound; moved
        return ReplyKind.NO_SUCH_USER if klass == "5" else ReplyKind.TEMPORARY
    if code == "2.1":
        return ReplyKind.DISABLED if klass == "5" else ReplyKind.TEMPORARY
    if code == "2.2":
        return ReplyKind.FULL
    if code == "5.3":
        return ReplyKind.TOO_MANY_RECIPIENTS
    if code in ("6.7", "6.8", "6.9"):  # RFC 6531: non-ASCII addresses need SMTPUTF8
        return ReplyKind.NEEDS_SMTPUTF8
    if code in ("1.3",):
        return ReplyKind.SYNTAX
    if code in ("1.7", "1.8"):  # our sender address
        return ReplyKind.POLICY
    return None


@lru_cache(maxsize=4096)  # a server says the same few things thousands of times in a run
def classify(code: int, message: str) -> Reply:
    text = " ".join(line.strip() for line in message.splitlines()).strip()
    match = _ENHANCED.match(text)
    enhanced = None
    by_enhanced: ReplyKind | None = None
    if match:
        enhanced = f"{match.group(1)}.{match.group(2)}.{match.group(3)}"
        if match.group(1) == str(code)[0]:  # an enhanced code that contradicts the reply code is ignored
            by_enhanced = _kind_from_enhanced(match.group(1), match.group(2), match.group(3))
    wait = _WAIT.search(text)
    retry_after = float(wait.group(1)) if wait else None

    if 200 <= code < 300:
        return Reply(code, enhanced, text, ReplyKind.ACCEPTED)
    if code == 421:
        return Reply(code, enhanced, text, ReplyKind.CLOSING, retry_after)
    if 400 <= code < 500:
        if code == 452 and (by_enhanced is ReplyKind.TOO_MANY_RECIPIENTS or re.search(r"too many recipients", text, re.I)):
            return Reply(code, enhanced, text, ReplyKind.TOO_MANY_RECIPIENTS)
        if by_enhanced is ReplyKind.FULL or _FULL_WORDS.search(text):
            return Reply(code, enhanced, text, ReplyKind.FULL, retry_after)
        if _GREYLIST_WORDS.search(text) or (enhanced in ("4.7.1", "4.2.0") and code in (450, 451)):
            return Reply(code, enhanced, text, ReplyKind.GREYLISTED, retry_after)
        return Reply(code, enhanced, text, ReplyKind.TEMPORARY, retry_after)
    if 500 <= code < 600:
        kind = by_enhanced
        if kind is ReplyKind.ACCEPTED or kind is ReplyKind.TOO_MANY_RECIPIENTS:
            kind = None
        if kind is None:
            kind = _kind_from_text(code, text)
        return Reply(code, enhanced, text, kind)
    return Reply(code, enhanced, text, ReplyKind.UNCLEAR)


def _kind_from_text(code: int, text: str) -> ReplyKind:
    """No enhanced code we can read (or a generic one such as 5.5.0 / 5.0.0): go by the words."""
    if _FULL_WORDS.search(text) or code == 552:
        return ReplyKind.FULL
    if _POLICY_WORDS.search(text):  # "mailbox unavailable: your IP is blocked" is about us
        return ReplyKind.POLICY
    if _DISABLED_WORDS.search(text):
        return ReplyKind.DISABLED
    if _UNKNOWN_USER_WORDS.search(text):
        return ReplyKind.NO_SUCH_USER
    return ReplyKind.UNCLEAR
