"""`listwarden apikey create` prints a working key once and stores only its hash; list shows no key;
revoke stops it. Run as a user would: the command in a subprocess, on the database the server uses."""

from __future__ import annotations

import os
import subprocess
import sys

from core.apikeys import hash_key
from core.storage.models import ApiKey
from tests.api.conftest import running_api


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "listwarden", "apikey", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60, check=False)


async def test_create_prints_the_key_once_and_it_works_until_revoked(template_db, tmp_path):
    from tests.api.conftest import api_settings, fresh_database

    settings = api_settings(fresh_database(template_db, tmp_path))
    env = {"DATABASE_URL": settings.database_url, "LISTWARDEN_SECRET_KEY": settings.secret_key.get_secret_value()}
    created = cli(env, "create", "--name", "CRM sync \u00e9", "--approver", "--workspace", "W1")
    assert created.returncode == 0, created.stderr
    plain = created.stdout.strip()  # stdout holds the key alone, for scripts; the explanation is on stderr
    assert plain.startswith("lw_") and "will not be shown again" in created.stderr
    listed = cli(env, "list")
    assert listed.returncode == 0 and plain not in listed.stdout and "CRM sync \u00e9" in listed.stdout
    async with running_api(settings, credits=0) as api:
        [row] = await ApiKey.filter(name="CRM sync \u00e9").values()
        assert row["digest"] == hash_key(plain) and row["roles"] == ["approver"] and plain not in str(row)
        assert (await api.get("/v1/integrations", plain)).status_code == 200
        revoked = cli(env, "revoke", row["id"])
        assert revoked.returncode == 0, revoked.stderr
        assert (await api.get("/v1/integrations", plain)).status_code == 401
    again = cli(env, "revoke", row["id"])
    assert again.returncode != 0 and "No active key" in again.stderr


def test_bad_names_are_refused_in_one_sentence(template_db, tmp_path):
    from tests.api.conftest import fresh_database

    env = {"DATABASE_URL": fresh_database(template_db, tmp_path), "LISTWARDEN_SECRET_KEY": "YTIyYTRkOGUxYWI2MThhMmRiMmM1YWNlMzE2ZjE4ZDA="}
    result = cli(env, "create", "--name", "  ")
    assert result.returncode != 0 and "printable characters" in result.stderr and "Traceback" not in result.stderr
