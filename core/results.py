"""Validation-API results kept by contextId, for `GET /v1/email/results/{contextId}`.

The payload is stored exactly as the API answered it, so a fetch returns the same item; results
older than LISTWARDEN_RESULTS_RETENTION_DAYS are pruned by the job runner's sweep.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from core.storage.models import ValidationResult
from core.storage.sql import utcnow


def new_context_id() -> str:
    return f"ctx_{secrets.token_hex(10)}"


class ValidationResults:
    async def save(self, workspace_id: str, items: Sequence[Mapping[str, Any]]) -> None:
        """Each item has "contextId" and "email"; saved in one statement."""
        await ValidationResult.bulk_create([
            ValidationResult(context_id=item["contextId"], workspace_id=workspace_id, email=str(item.get("email", "")),
                             payload=dict(item))
            for item in items
        ])

    async def get(self, workspace_id: str, context_id: str) -> dict[str, Any] | None:
        row = await ValidationResult.filter(context_id=context_id, workspace_id=workspace_id).first()
        return None if row is None else dict(row.payload)

    async def prune(self, older_than: timedelta, now: datetime | None = None) -> int:
        return await ValidationResult.filter(created_at__lt=(now or utcnow()) - older_than).delete()
