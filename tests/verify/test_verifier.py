"""The verifier against real DNS and SMTP servers on loopback: one test per behaviour it must get right.

Each test names what must hold; most also check what went over the wire (the servers count it).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from core.verify import ConfigurationError, Status, Verifier
from tests.mailservers import MailWorld
from tests.verify.conftest import build_world


def host(world, name):
    return next(h for h in world.hosts if h.name == name)


async def verify(world, email, **config):
    verifier = Verifier(world.config(**config))
    try:
        return await verifier.verify(email)
    finally:
        await verifier.aclose()


async def test_existing_mailbox_is_valid(world):
    result = await verify(world, "ann@acme.example")
    assert (result.status, result.score, result.classifier) == (Status.VALID, 10, "valid")
    assert (result.syntax, result.mx, result.mailbox) == ("pass", "pass", "pass")
    assert result.smtp_code == 250 and result.mx_host == "mx.acme.example"


async def test_unknown_user_is_invalid_with_the_servers_reply(world):
    result = await verify(world, "nobody-here@acme.example")
    assert result.status is Status.INVALID and result.score == 0 and result.mailbox == "fail"
    assert result.smtp_code == 550 and "User unknown" in result.smtp_message


async def test_full_mailbox_is_valid_not_invalid(world):
    """552 5.2.2: the person exists; deleting them would lose a real contact."""
    result = await verify(world, "full@acme.example")
    assert result.status is Status.VALID and "mailbox_full" in result.flags and result.score == 7


async def test_disabled_mailbox_is_invalid(world):
    result = await verify(world, "off@acme.example")
    assert result.status is Status.INVALID and "mailbox_disabled" in result.flags


async def test_role_mailbox_that_exists_is_a_role_account(world):
    result = await verify(world, "info@acme.example")
    assert result.status is Status.ROLE_ACCOUNT and "role_email" in result.flags


async def test_catch_all_domain_is_never_reported_valid(world):
    """The random-local-part probe is accepted, so an accepted address proves nothing."""
    result = await verify(world, "whoever@catchall.example")
    assert result.status is Status.CATCH_ALL and "catchall" in result.flags and result.mailbox == "n/a"


async def test_catch_all_probe_is_spent_once_per_domain(world):
    server = host(world, "mx.catchall.example")
    before = server.stats.rcpt
    verifier = Verifier(world.config())
    results = [r async for r in verifier.verify_many([f"p{i}@catchall.example" for i in range(10)])]
    await verifier.aclose()
    assert {r.status for r in results} == {Status.CATCH_ALL}
    assert server.stats.rcpt - before == 11  # ten addresses and one probe


async def test_domain_known_not_catch_all_gets_no_probe(world):
    server = host(world, "gmail-smtp-in.l.google.com")
    before = server.stats.rcpt
    assert (await verify(world, "user1@gmail.com")).status is Status.VALID
    assert server.stats.rcpt - before == 1


async def test_a_rejection_makes_the_probe_unnecessary(world):
    """One rejected real address already proves the domain is not catch-all."""
    server = host(world, "mx.acme.example")
    before = server.stats.rcpt
    verifier = Verifier(world.config())
    results = [r async for r in verifier.verify_many(["nope1@acme.example", "ann@acme.example"])]
    await verifier.aclose()
    assert [r.status for r in results] == [Status.INVALID, Status.VALID]
    assert server.stats.rcpt - before == 2


async def test_many_recipients_share_one_pipelined_session(world):
    server = host(world, "gmail-smtp-in.l.google.com")
    connections, batches = server.stats.connections, server.stats.pipelined_batches
    verifier = Verifier(world.config(per_host=1))
    results = [r async for r in verifier.verify_many([f"user{i}@gmail.com" for i in range(30)])]
    await verifier.aclose()
    assert all(r.status is Status.VALID for r in results)
    assert server.stats.connections - connections == 1
    assert server.stats.pipelined_batches > batches
    assert max(server.stats.rcpt_per_session) == 30


async def test_a_long_queue_is_shared_by_parallel_sessions_within_the_host_limit(world):
    """Thirty recipients sent down one session wait for thirty replies in a row; up to the host's
    limit, sessions share them, and none is opened beyond it or for a handful of addresses."""
    server = host(world, "gmail-smtp-in.l.google.com")
    connections, sessions_before = server.stats.connections, len(server.stats.rcpt_per_session)
    server.stats.max_open = server.stats.open
    verifier = Verifier(world.config(per_host=3))
    results = [r async for r in verifier.verify_many([f"user{i}@gmail.com" for i in range(30)])]
    await verifier.aclose()
    assert all(r.status is Status.VALID for r in results)
    assert server.stats.connections - connections == 3
    assert sum(server.stats.rcpt_per_session[sessions_before:]) == 30
    assert server.stats.max_open <= 3

    connections = server.stats.connections
    verifier = Verifier(world.config(per_host=3))
    results = [r async for r in verifier.verify_many([f"few{i}@gmail.com" for i in range(4)])]
    await verifier.aclose()
    assert server.stats.connections - connections == 1


async def test_the_end_of_a_domains_queue_is_shared_across_its_mx_hosts():
    """Two equal MX hosts, one session each: forty recipients go twenty and twenty, not forty down
    one session while the other host idles (the tail that kept a big provider's pool running)."""
    world = MailWorld()
    mailboxes = {f"p{i}@pair.example" for i in range(40)}
    first, second = world.smtp_host(mailboxes=mailboxes), world.smtp_host(mailboxes=mailboxes)
    world.domain("pair.example", mx=[first, second], preferences=[10, 10])
    with world.running():
        verifier = Verifier(world.config(per_host=1))
        results = [r async for r in verifier.verify_many(sorted(mailboxes))]
        await verifier.aclose()
    assert sum(r.status is Status.VALID for r in results) == 40
    per_host = [first.stats.rcpt, second.stats.rcpt]
    assert sum(per_host) == 41  # the forty and one catch-all probe
    assert min(per_host) >= 15, per_host


async def test_no_pipelining_when_the_server_does_not_offer_it(world):
    server = host(world, "mx.nopipe.example")
    verifier = Verifier(world.config())
    results = [r async for r in verifier.verify_many(["a@nopipe.example", "b@nopipe.example", "c@nopipe.example"])]
    await verifier.aclose()
    assert [r.status for r in results] == [Status.VALID, Status.VALID, Status.INVALID]
    assert server.stats.pipelined_batches == 0


async def test_domains_on_one_shared_host_share_a_session(world):
    """Like an MTA's connection cache: RSET, then the next domain's transaction, same session."""
    server = host(world, "mx.sharedhost.example")
    before = server.stats.connections
    verifier = Verifier(world.config())
    for i in range(3):  # routes known up front, so all three domains wait on the host together
        verifier._routes.put(f"site{i}.example", await verifier.router.route(f"site{i}.example"))
    results = [r async for r in verifier.verify_many([f"u@site{i}.example" for i in range(3)])]
    await verifier.aclose()
    assert all(r.status is Status.VALID for r in results)
    assert server.stats.connections - before == 1
    assert server.stats.commands["RSET"] >= 2


async def test_greylisted_address_is_resolved_within_the_run(world):
    started = time.monotonic()
    result = await verify(world, "bob@grey.example")
    assert result.status is Status.VALID and "greylisted" in result.flags
    assert time.monotonic() - started < 5


async def test_greylisting_past_the_longest_wait_is_unknown_not_invalid():
    world = MailWorld()
    world.domain("slowgrey.example", mx=[world.smtp_host(greylist_s=30, mailboxes={"x@slowgrey.example"})])
    with world.running():
        result = await verify(world, "x@slowgrey.example", greylist_max_wait=2.0)
    assert result.status is Status.UNKNOWN and "greylisted" in result.flags


async def test_permanent_temporary_failure_is_unknown(world):
    result = await verify(world, "x@tempfail.example", tempfail_retries=0)
    assert result.status is Status.UNKNOWN and result.smtp_code == 451


async def test_policy_block_is_unknown_not_invalid(world):
    """550 5.7.1 says the server will not talk to us, not that the mailbox is missing."""
    result = await verify(world, "x@policy.example")
    assert result.status is Status.UNKNOWN and "policy_block" in result.flags


@pytest.mark.parametrize("address,status", [
    ("kim@yahoo-like.example", Status.VALID), ("nobody@yahoo-like.example", Status.INVALID),
    ("lee@outlook-like.example", Status.VALID), ("nobody@outlook-like.example", Status.INVALID),
])
async def test_provider_reply_texts_without_standard_codes(world, address, status):
    assert (await verify(world, address)).status is status


async def test_next_mx_when_the_first_refuses(world):
    result = await verify(world, "sam@backup.example")
    assert result.status is Status.VALID and result.mx_host == "mx2.backup.example"


async def test_blackhole_and_refused_hosts_are_unknown(world):
    blackhole = await verify(world, "a@blackhole.example", connect_timeout=0.5)
    refused = await verify(world, "a@refused.example")
    assert (blackhole.status, refused.status) == (Status.UNKNOWN, Status.UNKNOWN)
    assert "timeout" in blackhole.flags and "no_connect" in refused.flags


async def test_implicit_mx_from_the_domains_address(world):
    result = await verify(world, "pat@implicit.example")
    assert result.status is Status.VALID and "implicit_mx" in result.flags


@pytest.mark.parametrize("address,flag", [
    ("a@nullmx.example", "null_mx"), ("a@nomail.example", "invalid_mx"), ("a@no-such-domain.example", "invalid_mx"),
    ("a@ghostmx.example", "invalid_mx"),
])
async def test_domains_that_take_no_mail_are_invalid_without_smtp(world, address, flag):
    connections = sum(h.stats.connections for h in world.hosts)
    result = await verify(world, address)
    assert result.status is Status.INVALID and flag in result.flags and result.mx == "fail"
    assert sum(h.stats.connections for h in world.hosts) == connections


@pytest.mark.parametrize("address,flag", [("a@servfail.example", "dns_error"), ("a@silent.example", "timeout")])
async def test_dns_failures_are_unknown_never_invalid(world, address, flag):
    result = await verify(world, address, dns_timeout=0.5)
    assert result.status is Status.UNKNOWN and flag in result.flags


async def test_one_dns_lookup_per_domain_per_run(world):
    before = world.dns.queries["MX acme.example"]
    verifier = Verifier(world.config())
    [r async for r in verifier.verify_many(["ann@acme.example", "x@acme.example", "y@ACME.example"])]
    await verifier.aclose()
    assert world.dns.queries["MX acme.example"] - before == 1


async def test_utf8_local_part_only_goes_to_servers_that_offer_smtputf8(world):
    sent_before = host(world, "mx.noutf8.example").stats.rcpt
    assert (await verify(world, "josé@acme.example")).status is Status.VALID
    refused = await verify(world, "josé@noutf8.example")
    assert refused.status is Status.INVALID and "smtputf8" in refused.flags
    assert host(world, "mx.noutf8.example").stats.rcpt == sent_before  # never sent


async def test_disposable_domain_needs_no_smtp(world):
    server = host(world, "mx.mailinator.com")
    result = await verify(world, "temp@mailinator.com")
    assert result.status is Status.DISPOSABLE and "disposable" in result.flags
    assert server.stats.connections == 0


async def test_typo_suggested_only_when_the_typed_domain_does_not_resolve(world):
    typo = await verify(world, "ann@gmial.com")
    assert typo.status is Status.INVALID and typo.suggestion == "ann@gmail.com" and "typo" in typo.flags
    real = await verify(world, "real@gmai.com")
    assert real.status is Status.VALID and real.suggestion is None


async def test_identity_helo_and_sender_come_from_settings_and_data_is_never_sent(world):
    await verify(world, "ann@acme.example")
    server = host(world, "mx.acme.example")
    assert server.stats.helo_names == {"verifier.sender.example"}
    assert server.stats.senders == {"verify@sender.example"}
    assert all(h.stats.commands["DATA"] == 0 for h in world.hosts)


async def test_sender_whose_domain_does_not_resolve_is_a_startup_error(world):
    with pytest.raises(ConfigurationError, match="LISTWARDEN_MAIL_FROM"):
        await Verifier(world.config(mail_from="probe@unregistered.example")).check_identity()
    await Verifier(world.config()).check_identity()


async def test_per_host_politeness_holds_and_421_is_not_retried_into():
    """No more than per_host sessions at once; a host that said 421 is left alone, another MX is used."""
    world = MailWorld()
    busy = world.smtp_host(name="a.pool.example", max_conn=0, mailboxes={f"m{i}@pool.example" for i in range(200)})
    calm = world.smtp_host(name="b.pool.example", mailboxes={f"m{i}@pool.example" for i in range(200)})
    world.domain("pool.example", mx=[busy, calm], preferences=[10, 10])
    with world.running():
        verifier = Verifier(world.config(per_host=2, rcpt_per_session=10))
        results = [r async for r in verifier.verify_many([f"m{i}@pool.example" for i in range(200)])]
        stats = verifier.smtp_stats
        await verifier.aclose()
    assert all(r.status is Status.VALID for r in results)
    # the sessions opened before the first 421 came back were refused; none was opened after it
    assert busy.stats.connections == busy.stats.rejected_421 == stats.rejected_421 <= 2
    assert calm.stats.max_open <= 2


async def test_452_too_many_recipients_moves_the_rest_to_another_session():
    world = MailWorld()
    server = world.smtp_host(max_rcpt=7, mailboxes={f"m{i}@cap.example" for i in range(20)})
    world.domain("cap.example", mx=[server])
    with world.running():
        verifier = Verifier(world.config(per_host=1))  # one session at a time: each sees what the last learned
        results = [r async for r in verifier.verify_many([f"m{i}@cap.example" for i in range(20)])]
        await verifier.aclose()
    assert all(r.status is Status.VALID for r in results)
    # the first session learns the limit the hard way (its pipelined RCPTs past 7 get 452); later ones keep to it
    assert all(n <= 7 for n in server.stats.rcpt_per_session[1:]) and server.stats.connections >= 3


async def test_verify_many_keeps_input_order_and_answers_duplicates_once(world):
    emails = ["ann@acme.example", "nobody@acme.example", "ann@ACME.EXAMPLE", "not an address", "ann@acme.example"]
    server = host(world, "mx.acme.example")
    before = server.stats.rcpt
    verifier = Verifier(world.config())
    results = [r async for r in verifier.verify_many(emails)]
    await verifier.aclose()
    assert [r.email for r in results] == emails
    assert [r.status for r in results] == [Status.VALID, Status.INVALID, Status.VALID, Status.INVALID, Status.VALID]
    assert server.stats.rcpt - before == 2


async def test_verify_many_streams_an_async_iterable_with_bounded_memory(world):
    """However long the input, no more than `window` addresses are in flight."""
    verifier = Verifier(world.config(window=50))
    peak = 0

    async def addresses():
        nonlocal peak
        for i in range(600):
            peak = max(peak, len(verifier._inflight))
            yield f"user{i % 40}+{i}@gmail.com"

    count = 0
    async for _ in verifier.verify_many(addresses()):
        count += 1
    await verifier.aclose()
    assert count == 600 and peak <= 50


async def test_stopping_early_cancels_the_rest(world):
    verifier = Verifier(world.config())
    async for result in verifier.verify_many([f"user{i}@gmail.com" for i in range(40)]):
        assert result.status is Status.VALID
        break
    await verifier.aclose()
    await asyncio.sleep(0)


async def test_smtp_can_be_switched_off(world):
    result = await verify(world, "ann@acme.example", smtp=False)
    assert result.status is Status.UNKNOWN and result.mx == "pass" and result.mailbox == "n/a"


def test_a_world_can_be_built_twice():
    """The fixture world itself: two instances bind different ports and do not collide."""
    a, b = build_world(), build_world()
    with a.running(), b.running():
        assert a.smtp.port != b.smtp.port or a.dns.port != b.dns.port


async def test_a_host_that_was_down_is_tried_again_later():
    """In a long-running server a host is out for a while, not for ever."""
    world = MailWorld()
    server = world.smtp_host(mode="refused", mailboxes={"x@later.example"})
    world.domain("later.example", mx=[server])
    with world.running():
        verifier = Verifier(world.config(host_down_for=0.5, result_ttl=0.1, dns_ttl=60))
        assert (await verifier.verify("x@later.example")).status is Status.UNKNOWN
        server.mode = "smtp"
        await world.smtp_call(world.smtp.start_host(server))
        await asyncio.sleep(0.6)
        assert (await verifier.verify("x@later.example")).status is Status.VALID
        await verifier.aclose()


async def test_answers_are_remembered_for_a_while_only(world):
    server = host(world, "mx.acme.example")
    verifier = Verifier(world.config(result_ttl=0.2))
    await verifier.verify("ann@acme.example")  # the address and the domain's catch-all probe
    before = server.stats.rcpt
    await verifier.verify("ann@acme.example")
    assert server.stats.rcpt - before == 0  # the second answer came from memory
    await asyncio.sleep(0.3)
    await verifier.verify("ann@acme.example")
    assert server.stats.rcpt - before == 1  # stale: asked again (the catch-all verdict is still fresh)
    await verifier.aclose()
