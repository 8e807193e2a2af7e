"""Our verification Result in CampaignKit's response shape (seed 004), field for field."""

from __future__ import annotations

from typing import Any

from core.verify.result import Result


def smtp_response(result: Result) -> str:
    """"250 OK" style: the code and the server's text; "" when no SMTP conversation answered."""
    if result.smtp_code is None:
        return ""
    message = (result.smtp_message or "").strip()
    return f"{result.smtp_code} {message}".strip()


def result_object(result: Result) -> dict[str, Any]:
    return {
        "syntax": result.syntax,
        "mx": result.mx,
        "mailbox": result.mailbox,
        "score": int(result.score),
        "classifier": str(result.classifier),
        "description": list(result.flags),
        "smtpResponse": smtp_response(result),
    }


def result_item(email: str, context_id: str, result: Result) -> dict[str, Any]:
    return {"email": email, "contextId": context_id, "result": result_object(result)}
