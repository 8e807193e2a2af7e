"""A local Slack Web API server that records every call and answers like Slack does.

It serves `/api/{method}` (AsyncWebClient appends the method to SLACK_API_URL), the
`response_url`s our payload builders hand out (`/response/{id}`), the upload URLs
`files.getUploadURLExternal` returns, and `url_private` downloads. Every message and view that
reaches it is checked against Block Kit's limits (`bot.blocks.limits`); the fixture fails the
test on any violation.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bot.blocks.limits import message_violations, options_violations, view_violations

BOT_TOKEN = "xoxb-test-token"
TEAM_ID = "T0TEAM"
BOT_USER_ID = "U0BOT"
MESSAGE_METHODS = {"chat.postMessage", "chat.update", "chat.postEphemeral", "response_url"}
VIEW_METHODS = {"views.open", "views.update", "views.publish", "views.push"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    response: dict[str, Any] = field(default_factory=dict)
    received: float = field(default_factory=time.monotonic)


@dataclass
class FakeSlack:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # user id -> users.info "user"
    usergroups: dict[str, list[str]] = field(default_factory=dict)  # usergroup id -> members (usergroups.list too)
    files: dict[str, bytes] = field(default_factory=dict)  # file id -> content served at url_private
    calls: list[Call] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    not_in_channels: set[str] = field(default_factory=set)  # chat.postMessage there answers not_in_channel
    socket_envelopes: list[dict[str, Any]] = field(default_factory=list)  # sent to a Socket Mode client on connect
    socket_replies: list[dict[str, Any]] = field(default_factory=list)  # what the client sent back (acks)
    url: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self.app = Starlette(routes=[
            Route("/api/{method}", self.api, methods=["GET", "POST"]),
            Route("/response/{rid}", self.response_url, methods=["POST"]),
            Route("/upload/{file_id}", self.upload, methods=["POST"]),
            Route("/files/{file_id}", self.download, methods=["GET"]),
            WebSocketRoute("/socket", self.socket),
            Route("/_calls", self.count, methods=["GET"]),
        ])

    # --- helpers for tests -----------------------------------------------------------
    def response_url_for(self, rid: str = "r1") -> str:
        return f"{self.url}/response/{rid}"

    def methods(self) -> list[str]:
        return [c.method for c in self.calls]

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Listeners keep working after ack(): poll until `count` calls of `method` arrived."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.of(method)) < count:
            if loop.time() > deadline:
                raise AssertionError(f"expected {count} {method} call(s) within {timeout}s; got {self.methods()}")
            await asyncio.sleep(0.01)
        return self.of(method)

    def check(self, method: str, params: dict[str, Any]) -> None:
        found: list[str] = []
        if method in MESSAGE_METHODS:
            found = message_violations(params)
        elif method in VIEW_METHODS:
            view = params.get("view")
            found = view_violations(json.loads(view) if isinstance(view, str) else view or {})
        self.violations.extend(f"{method}: {v}" for v in found)

    # --- endpoints -----------------------------------------------------------------
    async def _params(self, request: Request) -> dict[str, Any]:
        if request.headers.get("content-type", "").startswith("application/json"):
            return json.loads(await request.body() or b"{}")
        form = await request.form()
        params: dict[str, Any] = {**request.query_params, **form}  # slack_sdk sends some methods' args as a query
        for key in ("blocks", "attachments", "view", "files"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        return params

    async def api(self, request: Request) -> Response:
        method = request.path_params["method"]
        params = await self._params(request)
        self.check(method, params)
        token = request.headers.get("authorization", "").removeprefix("Bearer ") or params.get("token", "")
        expected = "xapp-" if method == "apps.connections.open" else "xoxb-"
        if method != "oauth.v2.access" and not token.startswith(expected):
            body: dict[str, Any] = {"error": "invalid_auth"}
        else:
            handler = getattr(self, "m_" + method.replace(".", "_"), None)
            body = handler(params) if handler else {}
        with self._lock:
            self.calls.append(Call(method, params, dict(request.headers), body))  # recorded with its answer
        return JSONResponse({"ok": True, **body} if "error" not in body else {"ok": False, **body})

    async def count(self, request: Request) -> Response:
        """How many calls arrived so far (a benchmark in another process waits for quiet through it)."""
        return JSONResponse({"calls": len(self.calls)})

    async def response_url(self, request: Request) -> Response:
        params = json.loads(await request.body())
        params["_rid"] = request.path_params["rid"]
        self.calls.append(Call("response_url", params, dict(request.headers)))
        self.check("response_url", params)
        return PlainTextResponse("ok")

    async def socket(self, websocket: WebSocket) -> None:
        """Socket Mode: hello, then the queued envelopes; every reply (ack) is recorded."""
        await websocket.accept()
        await websocket.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0APP"}})
        for envelope in self.socket_envelopes:
            await websocket.send_json(envelope)
        try:
            while True:
                self.socket_replies.append(json.loads(await websocket.receive_text()))
        except WebSocketDisconnect:
            pass

    async def upload(self, request: Request) -> Response:
        self.uploads[request.path_params["file_id"]] = await request.body()
        return PlainTextResponse("OK - 1")

    async def download(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {BOT_TOKEN}":
            return PlainTextResponse("login page", status_code=302)
        return Response(self.files[request.path_params["file_id"]], media_type="text/csv")

    # --- Web API methods -------------------------------------------------------------
    def m_apps_connections_open(self, p: dict) -> dict:
        return {"url": self.url.replace("http://", "ws://") + "/socket"}

    def m_auth_test(self, p: dict) -> dict:
        return {"url": "https://test.slack.com/", "team": "Test", "user": "listwarden", "team_id": TEAM_ID,
                "user_id": BOT_USER_ID, "bot_id": "B0BOT", "is_enterprise_install": False}

    def _message(self, p: dict) -> dict:
        return {"channel": p.get("channel"), "ts": f"1700000000.{next(self._ts):06d}",
                "message": {"text": p.get("text", ""), "blocks": p.get("blocks", [])}}

    def m_chat_postMessage(self, p: dict) -> dict:
        if p.get("channel") in self.not_in_channels:
            return {"error": "not_in_channel"}
        return self._message(p)

    def m_chat_update(self, p: dict) -> dict:
        return {"channel": p.get("channel"), "ts": p.get("ts"), "text": p.get("text", "")}

    def m_chat_delete(self, p: dict) -> dict:
        return {"channel": p.get("channel"), "ts": p.get("ts")}

    def m_chat_getPermalink(self, p: dict) -> dict:
        ts = str(p.get("message_ts", "")).replace(".", "")
        return {"channel": p.get("channel"), "permalink": f"https://test.slack.com/archives/{p.get('channel')}/p{ts}"}

    def m_chat_postEphemeral(self, p: dict) -> dict:
        return {"message_ts": f"1700000000.{next(self._ts):06d}"}

    def _view(self, p: dict) -> dict:
        view = p.get("view") or {}
        view_id = p.get("view_id") or f"V{next(self._ids):05d}"
        return {"view": {**view, "id": view_id, "hash": f"h{next(self._ids)}", "state": {"values": {}}}}

    m_views_open = m_views_update = m_views_publish = m_views_push = _view

    def m_users_info(self, p: dict) -> dict:
        user = self.users.get(p.get("user", ""))
        return {"user": user} if user else {"error": "user_not_found"}

    def m_usergroups_list(self, p: dict) -> dict:
        return {"usergroups": [{"id": gid, "handle": gid.lower(), "name": f"Group {gid}"} for gid in self.usergroups]}

    def m_usergroups_users_list(self, p: dict) -> dict:
        members = self.usergroups.get(p.get("usergroup", ""))
        return {"users": members} if members is not None else {"error": "no_such_subteam"}

    def m_files_getUploadURLExternal(self, p: dict) -> dict:
        file_id = f"F{next(self._ids):05d}"
        return {"upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def m_files_completeUploadExternal(self, p: dict) -> dict:
        files = p.get("files") or []
        return {"files": [{"id": f["id"], "title": f.get("title", "")} for f in files]}

    def m_files_info(self, p: dict) -> dict:
        file_id = p.get("file", "")
        if file_id not in self.files:
            return {"error": "file_not_found"}
        return {"file": {"id": file_id, "name": f"{file_id}.csv", "filetype": "csv",
                         "size": len(self.files[file_id]), "url_private": f"{self.url}/files/{file_id}",
                         "url_private_download": f"{self.url}/files/{file_id}"}}

    def m_oauth_v2_access(self, p: dict) -> dict:
        if p.get("code") != "good-code":
            return {"error": "invalid_code"}
        return {"access_token": "xoxb-installed-token", "token_type": "bot", "scope": "commands,chat:write",
                "bot_user_id": BOT_USER_ID, "app_id": "A0APP", "team": {"id": TEAM_ID, "name": "Test"},
                "enterprise": None, "is_enterprise_install": False,
                "authed_user": {"id": "U0INSTALLER"}}


def assert_options_within_limits(options: list[dict]) -> None:
    problems = options_violations(options)
    assert not problems, problems
