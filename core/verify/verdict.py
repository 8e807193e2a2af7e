"""From evidence (syntax, DNS, the RCPT reply, the catch-all test) to one Result.

Every decision of the form "this evidence means that status" is made here and nowhere else;
what a status then means (score band, classifier, refund) is `status.STATUS_TABLE`.
"""

from __future__ import annotations

from core.verify.address import Address, SyntaxProblem
from core.verify.dns import MailRoute, RouteKind
from core.verify.prober import CatchAll, Outcome, OutcomeKind
from core.verify.result import Result
from core.verify.status import Status, info
from core.verify.tables import is_free_provider, is_role


def _result(email: str, normalized: str, status: Status, score: int, flags: list[str], reason: str, **fields: object) -> Result:
    low, high = info(status).score_range
    return Result(
        email=email,
        normalized=normalized,
        status=status,
        score=max(low, min(high, score)),
        classifier=info(status).classifier,
        flags=tuple(dict.fromkeys(flags)),
        reason=reason,
        **fields,  # type: ignore[arg-type]
    )


def syntax_failure(problem: SyntaxProblem) -> Result:
    return _result(problem.original, "", Status.INVALID, 0, ["invalid_syntax"], problem.reason,
                   syntax="fail", mx="n/a", mailbox="n/a")


def _address_flags(address: Address, route: MailRoute | None) -> list[str]:
    flags = []
    if is_role(address.local):
        flags.append("role_email")
    if is_free_provider(address.domain):
        flags.append("free_provider")
    if address.smtputf8:
        flags.append("smtputf8")
    if route is not None and route.kind is RouteKind.IMPLICIT:
        flags.append("implicit_mx")
    return flags


def dns_verdict(address: Address, route: MailRoute, suggestion: str | None) -> Result | None:
    """The Result when DNS alone settles it (or cannot be read); None when SMTP must decide."""
    if route.kind in (RouteKind.MX, RouteKind.IMPLICIT):
        return None
    base = _address_flags(address, None)
    email, normalized = address.original, address.normalized
    typo = ["typo"] if suggestion else []
    hint = f" Did you mean {suggestion}?" if suggestion else ""
    fields = dict(syntax="pass", mailbox="n/a", suggestion=suggestion)
    match route.kind:
        case RouteKind.NXDOMAIN:
            return _result(email, normalized, Status.INVALID, 0, [*base, "invalid_mx", *typo],
                           f"The domain {address.domain_unicode} does not exist.{hint}", mx="fail", **fields)
        case RouteKind.NULL_MX:
            return _result(email, normalized, Status.INVALID, 0, [*base, "invalid_mx", "null_mx"],
                           f"The domain {address.domain_unicode} says it accepts no email (null MX).", mx="fail", **fields)
        case RouteKind.NO_MAIL:
            return _result(email, normalized, Status.INVALID, 0, [*base, "invalid_mx", *typo],
                           f"The domain {address.domain_unicode} has no mail server.{hint}", mx="fail", **fields)
        case RouteKind.TIMEOUT:
            return _result(email, normalized, Status.UNKNOWN, 4, [*base, "timeout"],
                           f"The DNS servers for {address.domain_unicode} did not answer in time; try again later.",
                           mx="n/a", **fields)
        case RouteKind.ERROR:
            return _result(email, normalized, Status.UNKNOWN, 4, [*base, "dns_error"],
                           f"The DNS servers for {address.domain_unicode} failed to answer (SERVFAIL); try again later.",
                           mx="n/a", **fields)
    return None


def disposable_verdict(address: Address, route: MailRoute) -> Result:
    return _result(address.original, address.normalized, Status.DISPOSABLE, 4,
                   [*_address_flags(address, route), "disposable"],
                   f"{address.domain_unicode} is a disposable (throwaway) email service.",
                   syntax="pass", mx="pass", mailbox="n/a")


def dns_only_verdict(address: Address, route: MailRoute) -> Result:
    return _result(address.original, address.normalized, Status.UNKNOWN, 5, _address_flags(address, route),
                   "The domain accepts email; the mailbox was not checked (SMTP probing is off).",
                   syntax="pass", mx="pass", mailbox="n/a")


def _host_name(route: MailRoute, ip: str | None) -> str | None:
    if ip is None:
        return None
    for host in route.hosts:
        if ip in host.addresses:
            return host.name
    return ip


def smtp_verdict(address: Address, route: MailRoute, outcome: Outcome, catch_all: CatchAll | None) -> Result:
    flags = _address_flags(address, route)
    if outcome.greylisted:
        flags.append("greylisted")
    reply = outcome.reply
    fields = dict(
        syntax="pass",
        mx="pass",
        smtp_code=reply.code if reply else None,
        smtp_message=reply.text if reply else None,
        mx_host=_host_name(route, outcome.mx_host),
    )
    email, normalized = address.original, address.normalized
    minor = 1 if "implicit_mx" in flags else 0
    role = "role_email" in flags

    def result(status: Status, score: int, extra: list[str], reason: str, mailbox: str) -> Result:
        return _result(email, normalized, status, score, [*flags, *extra], reason, mailbox=mailbox, **fields)

    match outcome.kind:
        case OutcomeKind.ACCEPTED | OutcomeKind.FULL:
            full = outcome.kind is OutcomeKind.FULL
            extra = ["mailbox_full"] if full else []
            if catch_all is CatchAll.YES:
                return result(Status.CATCH_ALL, 5, [*extra, "catchall"],
                              "The domain accepts every address, so this mailbox cannot be confirmed.", "n/a")
            if catch_all is CatchAll.UNKNOWN:
                return result(Status.RISKY, 5, extra,
                              "The server accepted the address, but whether it accepts every address could not be tested.",
                              "n/a")
            if role:
                return result(Status.ROLE_ACCOUNT, 6, extra, "A shared role mailbox (info@, support@...), not a person.", "pass")
            if full:
                return result(Status.VALID, 7, extra, "The mailbox exists but is full; mail will arrive once space is freed.",
                              "pass")
            return result(Status.VALID, 10 - minor, extra, "The mailbox exists and accepts mail.", "pass")
        case OutcomeKind.NO_SUCH_USER:
            return result(Status.INVALID, 0, [], "The mail server says this mailbox does not exist.", "fail")
        case OutcomeKind.DISABLED:
            return result(Status.INVALID, 1, ["mailbox_disabled"], "The mailbox exists but is disabled.", "fail")
        case OutcomeKind.SYNTAX:
            return result(Status.INVALID, 1, [], "The mail server rejects this address as malformed.", "fail")
        case OutcomeKind.NEEDS_SMTPUTF8:
            return result(Status.INVALID, 1, [],
                          "The address has non-ASCII characters and its mail server cannot accept them (no SMTPUTF8).",
                          "fail")
        case OutcomeKind.UNCLEAR if outcome.others_accepted:
            return result(Status.INVALID, 2, [],
                          "The mail server refused this address while accepting others in the same session.", "fail")
        case OutcomeKind.UNCLEAR:
            return result(Status.UNKNOWN, 4, [], "The mail server refused the address without saying why.", "n/a")
        case OutcomeKind.POLICY:
            return result(Status.UNKNOWN, 4, ["policy_block"],
                          "The mail server refused to answer for policy reasons; this says nothing about the mailbox.",
                          "n/a")
        case OutcomeKind.SENDER_REJECTED:
            return result(Status.UNKNOWN, 4, ["policy_block"],
                          "The mail server refused our sender address (check LISTWARDEN_MAIL_FROM).", "n/a")
        case OutcomeKind.GREYLISTED:
            return result(Status.UNKNOWN, 4, [], "The mail server kept deferring us (greylisting); try again later.", "n/a")
        case OutcomeKind.TEMPORARY:
            return result(Status.UNKNOWN, 4, [], "The mail server had a temporary failure; try again later.", "n/a")
        case OutcomeKind.NO_CONNECT:
            return result(Status.UNKNOWN, 4, ["no_connect"], "None of the domain's mail servers accepted a connection.",
                          "n/a")
    return result(Status.UNKNOWN, 4, ["timeout"], "The domain's mail servers did not answer in time.", "n/a")
