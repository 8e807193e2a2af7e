"""The tables, named in the seeds' words. Transports never import these: they call the services.

One module per area; this package is the tortoise app "models" (see core.storage.config).
"""

from core.storage.models.api import ApiKey, IdempotencyRecord, ValidationResult
from core.storage.models.connection import Connection, KeywordRule, PlatformOAuthState, SyncedList
from core.storage.models.jobs import ActionAudit, Job, JobItem
from core.storage.models.ledger import CreditEntry
from core.storage.models.slack import SlackBot, SlackInstallation, SlackOAuthState
from core.storage.models.webhooks import WebhookDelivery
from core.storage.models.workspace import CleanupPolicy, Workspace, WorkspaceMember

__all__ = [
    "ApiKey", "IdempotencyRecord", "ValidationResult",
    "Connection", "KeywordRule", "PlatformOAuthState", "SyncedList",
    "ActionAudit", "Job", "JobItem",
    "CreditEntry",
    "SlackBot", "SlackInstallation", "SlackOAuthState",
    "WebhookDelivery",
    "CleanupPolicy", "Workspace", "WorkspaceMember",
]
