"""Everything a transport calls in the core, built once per process: `runtime.services`.

    services = runtime.services            # set by core.storage.component at install time
    await services.connections.create(...); await services.credits.charge(...); await services.jobs.start_cleanup(...)

Each attribute is one small service module with one job; transports never touch ORM models.
The services work once the runtime has started (the database is opened in the lifespan).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.apikeys import ApiKeys
from core.cleanup import CleanupPolicies
from core.connections import Connections
from core.credits import Credits
from core.deliveries import WebhookDeliveries
from core.idempotency import Idempotency
from core.jobs.engine import VerifierFactory
from core.jobs.events import JobEvents
from core.jobs.service import Jobs
from core.jobs.system import JobSystem, Role
from core.keywords import KeywordRules
from core.oauth_states import PlatformOAuthStates
from core.results import ValidationResults
from core.settings import Settings
from core.storage.crypto import SecretBox, load_box
from core.workspaces import Workspaces

if TYPE_CHECKING:
    from core.runtime import Runtime


@dataclass
class Services:
    settings: Settings
    box: SecretBox = field(repr=False)
    workspaces: Workspaces
    credits: Credits
    connections: Connections
    keywords: KeywordRules
    policies: CleanupPolicies
    api_keys: ApiKeys
    results: ValidationResults
    idempotency: Idempotency
    deliveries: WebhookDeliveries
    oauth_states: PlatformOAuthStates
    job_system: JobSystem = field(init=False, repr=False)

    @property
    def jobs(self) -> Jobs:
        """Start, watch, approve, cancel, download and undo jobs (core/jobs/service.py)."""
        return self.job_system.jobs

    @property
    def events(self) -> JobEvents:
        """Subscribe to job state changes and progress (core/jobs/events.py)."""
        return self.job_system.events

    @classmethod
    def build(cls, settings: Settings, *, box: SecretBox | None = None,
              connector_options: Mapping[str, Any] | None = None, role: Role = "serve",
              verifier_factory: VerifierFactory | None = None) -> Services:
        """Everything, not started: `await services.job_system.start()` once the database is open."""
        box = box or load_box(settings)
        workspaces = Workspaces(settings)
        credits = Credits(settings, workspaces)
        workspaces.credits = credits
        services = cls(
            settings=settings, box=box, workspaces=workspaces, credits=credits,
            connections=Connections(box, workspaces, connector_options=connector_options),
            keywords=KeywordRules(), policies=CleanupPolicies(workspaces), api_keys=ApiKeys(workspaces),
            results=ValidationResults(), idempotency=Idempotency(), deliveries=WebhookDeliveries(),
            oauth_states=PlatformOAuthStates(),
        )
        services.job_system = JobSystem(services, settings, role=role, verifier_factory=verifier_factory)
        return services


def services_of(runtime: Runtime) -> Services:
    """The process's services; the storage component must be installed first (listwarden/components.py)."""
    services = getattr(runtime, "services", None)
    if services is None:
        raise RuntimeError("core.storage.component is not installed, so the core's services are unavailable.")
    return services
