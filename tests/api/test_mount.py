"""The API is mounted in the one app (listwarden.app.create_app, every component): /openapi.json, /v1
and the platform OAuth pages answer there, and a key made through the core works."""

from __future__ import annotations

import httpx

from core.settings import Settings
from listwarden.app import create_app
from tests.api.conftest import fresh_database
from tests.storage.fixtures import TEST_KEY


async def test_the_composed_app_serves_the_spec_v1_and_oauth(template_db, tmp_path):
    settings = Settings(DATABASE_URL=fresh_database(template_db, tmp_path), LISTWARDEN_SECRET_KEY=TEST_KEY,
                        LISTWARDEN_PUBLIC_URL="https://lw.example.test", LISTWARDEN_WEBHOOK_PROCESSOR=False)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        services = app.state.runtime.services
        key, _ = await services.api_keys.create("default", name="mount")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            spec = await client.get("/openapi.json")
            guarded = await client.post("/v1/email/validate", json={"emails": ["a@example.com"]})
            listed = await client.get("/v1/integrations", headers={"Authorization": f"Bearer {key}"})
            page = await client.get("/oauth/hubspot/start", params={"ticket": "nope"})
    assert spec.status_code == 200 and spec.json()["openapi"] == "3.1.0"
    assert spec.json()["servers"] == [{"url": "https://lw.example.test"}]
    assert guarded.status_code == 401
    assert listed.status_code == 200 and len(listed.json()["integrations"]) == 8
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
