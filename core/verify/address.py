"""Syntax and normalisation with email-validator (RFC 5321/5322/6531), never a hand-written regex.

The domain is lower-cased and turned into punycode, because that is what DNS and the RCPT
command need; the local part keeps its case (it is the server's to interpret) and is flagged
when it needs SMTPUTF8.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import email_validator
from email_validator import EmailNotValidError, EmailSyntaxError, ValidatedEmail
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES
from email_validator.syntax import (
    validate_email_domain_name,
    validate_email_length,
    validate_email_local_part,
)

# Longest input we hand to the parser: RFC 5321 caps a path at 256 octets, so anything much
# longer is invalid already and only costs parser time.
MAX_INPUT = 1024


_UNDECODABLE = re.compile("[\x00\ufffd\udc80-\udcff]")  # NUL, U+FFFD, or bytes kept as surrogates
# Characters that make email-validator's splitter do real work (quotes, display names, comments).
_NOT_SIMPLE = frozenset('"\\<>()[],;: \t')


@lru_cache(maxsize=65_536)
def _domain(domain_part: str, sender: bool) -> tuple[str, str] | str:
    """(unicode domain, ASCII domain), or the error sentence: list members share few domains."""
    try:
        info = validate_email_domain_name(domain_part, test_environment=sender, globally_deliverable=True)
    except EmailSyntaxError as exc:
        return str(exc)
    return info["domain"], info["ascii_domain"]


def _validate(text: str, sender: bool) -> ValidatedEmail:
    """email-validator's checks, with the domain validated once per domain.

    The common form (one @, no quoting or display name) goes through email-validator's own
    local-part, domain and length validators exactly as `validate_email` composes them; anything
    else takes `validate_email` itself.
    """
    if text.count("@") != 1 or not _NOT_SIMPLE.isdisjoint(text):
        return email_validator.validate_email(
            text,
            check_deliverability=False,  # DNS is ours: async, cached, with unknown kept apart from invalid
            allow_smtputf8=True,
            allow_quoted_local=True,
            allow_domain_literal=False,  # [192.0.2.1] addresses are not list members worth mailing
            allow_display_name=False,
            globally_deliverable=True,
            test_environment=sender,
            strict=True,  # RFC 5321 4.5.3.1.1: a local part over 64 octets is refused by servers
        )
    local, _, domain_part = text.partition("@")
    local_info = validate_email_local_part(local, allow_smtputf8=True, allow_empty_local=False, quoted_local_part=False,
                                           strict=True)
    normalized_local = unicodedata.normalize("NFC", local)
    if normalized_local != local:
        try:
            local_info = validate_email_local_part(normalized_local, allow_smtputf8=True, allow_empty_local=False,
                                                   quoted_local_part=False, strict=True)
        except EmailSyntaxError as exc:
            raise EmailSyntaxError("After Unicode normalization: " + str(exc)) from exc
    if not domain_part:
        raise EmailSyntaxError("There must be something after the @-sign.")
    domain = _domain(domain_part, sender)
    if isinstance(domain, str):
        raise EmailSyntaxError(domain)
    info = ValidatedEmail()
    info.original = text
    info.display_name = None
    info.smtputf8 = local_info["smtputf8"]
    info.local_part = local_info["local_part"]
    info.ascii_local_part = local_info["ascii_local_part"]
    if info.ascii_local_part is not None and info.ascii_local_part.lower() in CASE_INSENSITIVE_MAILBOX_NAMES:
        info.ascii_local_part = info.ascii_local_part.lower()
        info.local_part = info.local_part.lower()
    info.domain, info.ascii_domain = domain
    info.normalized = info.local_part + "@" + info.domain
    info.ascii_email = f"{info.ascii_local_part}@{info.ascii_domain}" if info.ascii_local_part else None
    validate_email_length(info)
    return info


@dataclass(frozen=True)
class Address:
    original: str
    local: str
    domain: str  # ASCII (A-labels), lower case
    domain_unicode: str
    smtputf8: bool  # the local part is not ASCII

    @property
    def normalized(self) -> str:
        return f"{self.local}@{self.domain}"

    @property
    def dedupe_key(self) -> str:
        """Same mailbox: the domain is case-insensitive, the local part is left as typed."""
        return self.normalized


@dataclass(frozen=True)
class SyntaxProblem:
    original: str
    reason: str  # one plain sentence


def parse(raw: str, *, sender: bool = False) -> Address | SyntaxProblem:
    """`sender=True` parses our own MAIL FROM, which may sit in a test zone such as `.test`."""
    text = raw.strip()
    if not text:
        return SyntaxProblem(raw, "The address is empty.")
    if len(text) > MAX_INPUT:
        return SyntaxProblem(raw, "The address is far longer than any deliverable address.")
    if _UNDECODABLE.search(text):
        return SyntaxProblem(raw, "The address contains a NUL byte or bytes that are not valid UTF-8.")
    if "@" not in text:
        return SyntaxProblem(raw, "The address has no @.")
    try:
        info = _validate(text, sender)
    except EmailNotValidError as exc:
        return SyntaxProblem(raw, str(exc))
    except Exception as exc:  # the parser must never take a row down with it
        return SyntaxProblem(raw, f"The address could not be parsed ({type(exc).__name__}).")
    domain = (info.ascii_domain or info.domain).lower()
    return Address(
        original=raw,
        local=info.local_part,
        domain=domain,
        domain_unicode=info.domain.lower(),
        smtputf8=bool(info.smtputf8),
    )
