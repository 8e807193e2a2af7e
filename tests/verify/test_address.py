"""Syntax and normalisation: email-validator's rules, RFC 5321/5322/6531 examples, and hostile input."""

from __future__ import annotations

import email_validator
import idna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.verify.address import Address, SyntaxProblem, _validate, parse

VALID = [
    "simple@example.com",
    "very.common@example.com",
    "disposable.style.email.with+symbol@example.com",
    "other.email-with-hyphen@example.com",
    "x@example.com",  # one-letter local part
    "example-indeed@strange-example.com",
    "user%example.com@example.org",  # % is an atext character
    "user-@example.org",
    "mailhost!username@example.org",
    '"john..doe"@example.org',  # quoted local part (RFC 5321 4.1.2)
    '"very.(),:;<>[]\\".VERY.\\"very@\\\\ \\"very\\".unusual"@strange.example.com',
    "用户@例子.广告",  # RFC 6531: UTF-8 local part and IDN domain
    "josé.garcía@müller-bäckerei.de",
]
INVALID = [
    "Abc.example.com",  # no @
    "A@b@c@example.com",
    'a"b(c)d,e:f;g<h>i[j\\k]l@example.com',
    'just"not"right@example.com',
    "this is\"not\\allowed@example.com",
    "i.like.underscores@but_they_are_not_allowed_in_this_part",
    "john..doe@example.com",  # consecutive dots
    ".john@example.com",
    "john.@example.com",
    "a@-example.com",
    "a@example..com",
    "x" * 65 + "@example.com",  # local part over 64 octets
    "a@" + "b" * 64 + ".com",  # DNS label over 63 octets
    "a@localhost",  # not globally deliverable
    "a@[192.0.2.1]",  # domain literals are not list members
    "",
]


@pytest.mark.parametrize("address", VALID)
def test_rfc_examples_that_are_valid(address):
    assert isinstance(parse(address), Address)


@pytest.mark.parametrize("address", INVALID)
def test_rfc_examples_that_are_invalid(address):
    assert isinstance(parse(address), SyntaxProblem)


def test_idn_domain_becomes_punycode_and_utf8_local_part_is_flagged():
    address = parse("josé.garcía@müller-bäckerei.de")
    assert address.domain == idna.encode("müller-bäckerei.de").decode() and address.domain_unicode == "müller-bäckerei.de"
    assert address.smtputf8 is True
    assert parse("ann@müller-bäckerei.de").smtputf8 is False  # an IDN domain alone needs no SMTPUTF8


def test_domain_is_case_insensitive_the_local_part_is_not():
    """RFC 5321 2.4: only the server may fold a local part; the domain is ours to fold."""
    assert parse("Ann@ACME.Example").normalized == "Ann@acme.example"
    assert parse("Ann@ACME.Example").dedupe_key == parse("Ann@acme.example").dedupe_key
    assert parse("Ann@acme.example").dedupe_key != parse("ann@acme.example").dedupe_key


@pytest.mark.parametrize("raw,reason", [
    ("no-at-sign.example.com", "no @"),
    ("a" * 300 + "@example.com", "too long"),
    ("ann\x00@example.com", "NUL"),
    ("ann\udcff@example.com", "not valid UTF-8"),  # an undecodable byte kept as a surrogate
    ("   ", "empty"),
])
def test_hostile_input_is_a_syntax_problem_with_a_reason(raw, reason):
    problem = parse(raw)
    assert isinstance(problem, SyntaxProblem) and problem.reason
    assert problem.original == raw


def _reference(text: str):
    try:
        info = email_validator.validate_email(
            text, check_deliverability=False, allow_smtputf8=True, allow_quoted_local=True,
            allow_domain_literal=False, allow_display_name=False, globally_deliverable=True, strict=True)
    except email_validator.EmailNotValidError as exc:
        return ("error", str(exc))
    return ("ok", info.local_part, info.ascii_domain, info.smtputf8)


def _ours(text: str):
    try:
        info = _validate(text, False)
    except email_validator.EmailNotValidError as exc:
        return ("error", str(exc))
    return ("ok", info.local_part, info.ascii_domain, info.smtputf8)


LOCAL = st.text(alphabet=st.sampled_from(list("abcXYZ019.-_+!#%&'*/=?^`{|}~é用\"\\ ")), min_size=0, max_size=70)
DOMAIN = st.text(alphabet=st.sampled_from(list("abcxyz019-.ü")), min_size=0, max_size=70)


@settings(max_examples=400, deadline=None)
@given(LOCAL, DOMAIN)
def test_fast_path_agrees_with_email_validator(local, domain):
    """Our domain-cached path must answer exactly what email-validator's validate_email answers."""
    text = f"{local}@{domain}"
    assert _ours(text) == _reference(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_text_gives_an_address_or_a_reason_never_an_exception(text):
    result = parse(text)
    assert isinstance(result, (Address, SyntaxProblem))
    if isinstance(result, SyntaxProblem):
        assert result.reason
