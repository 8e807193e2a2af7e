"""The live app against its own /openapi.json: no 5xx and no response that breaks the schema.

The app runs under uvicorn on a loopback port with its lifespan (storage, jobs) on a migrated
SQLite database; every platform's base URL points at its emulator on loopback and the verifier
at the loopback mail servers, so whatever schemathesis sends, no traffic leaves the host.
Property-based and bounded (a few examples per operation, derandomized) so the run stays well
under a minute. Half the cases are aimed at real resources (a MailerLite connection, a finished
job, a stored result) so that PATCH bodies, rules, syncs and downloads reach the handlers, not
just the 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from api.openapi import build_spec
from core.connectors import platforms
from core.services import Services
from core.storage.database import database
from tests.api.conftest import NO_LIMITS, api_settings, build_app, fresh_database, running_world, served
from tests.api.processes import LiveApp

EXAMPLES = 8  # per operation and mode; 150 random ones ran clean when this was written


def test_the_served_document_is_valid_openapi_3_1():
    spec = build_spec("http://localhost:8000")
    validate(spec)
    assert spec["openapi"] == "3.1.0"


@pytest.fixture(scope="module")
def live(template_db, tmp_path_factory):
    """(the app's URL, an approver key, real ids by path parameter name)."""
    with contextlib.ExitStack() as stack:
        world = stack.enter_context(running_world())
        emulators = [stack.enter_context(served(slug)) for slug in platforms()]
        mailerlite = next(p for p in emulators if p.slug == "mailerlite")
        db_url = fresh_database(template_db, tmp_path_factory.mktemp("schemathesis"))
        cfg = api_settings(db_url, world=world, platforms=tuple(emulators), LISTWARDEN_JOB_SWEEP_SECONDS="0.5")
        key, ids = asyncio.run(prepare(cfg, mailerlite))
        server = stack.enter_context(LiveApp(build_app(cfg)))
        yield server.url, key, ids


async def prepare(cfg, mailerlite) -> tuple[str, dict[str, str]]:
    """A key, credits, a connection with a rule, and a validation result, made through the core beforehand."""
    async with database(cfg.database_url):
        services = Services.build(cfg, connector_options=NO_LIMITS)
        key, _ = await services.api_keys.create("W1", name="schemathesis", roles={"approver"})
        await services.credits.grant("W1", 10**9)
        connection = await services.connections.create("W1", "mailerlite", mailerlite.form(), base_url=mailerlite.url)
        [rule] = await services.keywords.add(connection.id, "whitelist", ["vip"])
        await services.results.save("W1", [{"contextId": "ctx_schemathesis", "email": "a@example.com",
                                             "result": {"syntax": "pass", "mx": "pass", "mailbox": "pass", "score": 10,
                                                        "classifier": "valid", "description": [], "smtpResponse": "250 OK"}}])
    from core.connectors.http import close_shared_client

    await close_shared_client()  # its connections belong to this event loop, not the app's
    return key, {"type": "mailerlite", "id": connection.id, "rule_id": rule.id, "contextId": "ctx_schemathesis",
                 "list_id": mailerlite.emulator.list_id}


# The document the app serves (the test below checks they are the same), loaded at collection time;
# every call goes to the live app's own URL.
schema = schemathesis.openapi.from_dict(build_spec("http://127.0.0.1"))


def test_the_live_app_serves_this_document(live):
    import httpx

    url, _, _ = live
    served_spec = httpx.get(f"{url}/openapi.json").json()
    assert served_spec["paths"] == schema.raw_schema["paths"]
    assert served_spec["components"] == schema.raw_schema["components"]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors_and_every_response_matches_the_schema(case, live):
    url, key, ids = live
    operation_id = case.operation.definition.raw.get("operationId")
    excluded = []
    if operation_id in ("connect", "reconnect", "oauth_link"):  # what works depends on the platform, beyond the schema
        excluded.append(positive_data_acceptance)
    if case.media_type and case.media_type != "application/json":  # a file is "a string" to the schema
        excluded += [negative_data_rejection, positive_data_acceptance]
    params = case.path_parameters or {}
    if params and zlib.crc32(repr(sorted(params.items())).encode()) % 2 == 0:
        for name in params:
            if name in ids:
                params[name] = ids[name]
    case.call_and_validate(base_url=url, headers={"Authorization": f"Bearer {key}"}, excluded_checks=excluded)

