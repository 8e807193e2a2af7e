"""GET /webhooks/digest/{token}: what a Slack digest links to, every new subscriber of its window.

The token is unguessable and kept for a day (core/verify_first/digest.py); an unknown or old
one is a 404. HTML for people, `?format=csv` for a spreadsheet.
"""

from __future__ import annotations

import csv
import html
import io

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from core.verify_first import VerifyFirst

COLUMNS = ("email", "keyword", "status", "action", "because", "outcome")


def _error(record) -> str:
    return next((s.get("error", "") for s in record.get("steps", []) if s.get("step") == "action" and s.get("error")), "")


class DigestDetails:
    def __init__(self, verify_first: VerifyFirst) -> None:
        self.verify_first = verify_first

    async def endpoint(self, request: Request) -> Response:
        found = await self.verify_first.digests.details(request.path_params["token"])
        if found is None:
            return HTMLResponse("<p>This link is unknown or has expired.</p>", status_code=404)
        about, rows = found
        if request.query_params.get("format") == "csv":
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow([*COLUMNS, "error"])
            for r in rows:
                writer.writerow([*(r.get(c) or "" for c in COLUMNS), _error(r)])
            return Response(out.getvalue(), media_type="text/csv",
                            headers={"content-disposition": 'attachment; filename="verify-first.csv"'})
        cells = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(r.get(c) or ''))}</td>" for c in COLUMNS)
            + f"<td>{html.escape(_error(r))}</td></tr>" for r in rows)
        head = "".join(f"<th>{c}</th>" for c in (*COLUMNS, "error"))
        title = f"Verify-first, {html.escape(about['start'])} to {html.escape(about['end'])}"
        return HTMLResponse(f"<!doctype html><meta charset=utf-8><title>{title}</title><h1>{title}</h1>"
                            f"<p>{len(rows):,} new subscribers. <a href='?format=csv'>CSV</a></p>"
                            f"<table border=1 cellpadding=4><tr>{head}</tr>{cells}</table>")
