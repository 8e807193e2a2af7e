"""Workspaces (Slack teams) and who may do what in them: admin, approver, member.

Slack decides who is a workspace admin and who is in a user group; Listwarden stores only what
Slack cannot say: roles given inside Listwarden, the approver user group, and the four-eyes
setting. `can_approve` combines them, so the one rule lives here:

    ok = await services.workspaces.can_approve("T1", "U2", slack_admin=is_admin, in_approver_group=in_group)

A workspace row is created on first use (`ensure`), with LISTWARDEN_INITIAL_CREDITS granted once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from tortoise.exceptions import IntegrityError

from core.settings import Settings
from core.storage.models import Workspace, WorkspaceMember

if TYPE_CHECKING:
    from core.credits import Credits

Role = Literal["admin", "approver", "member"]
ROLES: tuple[Role, ...] = ("admin", "approver", "member")
DEFAULT_WORKSPACE = "default"  # the workspace of an instance used only through the REST API


@dataclass(frozen=True)
class WorkspaceView:
    id: str
    name: str
    four_eyes: bool
    approver_group: str | None
    created_at: datetime


def _view(row: Workspace) -> WorkspaceView:
    return WorkspaceView(row.id, row.name, row.four_eyes, row.approver_group, row.created_at)


class Workspaces:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.credits: Credits | None = None  # wired by core.services (the initial grant)
        self._known: set[str] = set()

    async def ensure(self, workspace_id: str, name: str | None = None) -> None:
        """Create the workspace the first time it is seen (with its initial credits); cheap afterwards."""
        if workspace_id in self._known and name is None:
            return
        try:
            row, created = await Workspace.get_or_create(
                id=workspace_id, defaults={"name": name or "", "four_eyes": self.settings.four_eyes})
        except IntegrityError:  # created concurrently
            row, created = await Workspace.get(id=workspace_id), False
        self._known.add(workspace_id)
        if name and row.name != name:
            row.name = name
            await row.save(update_fields=["name"])
        if created and self.settings.initial_credits > 0 and self.credits is not None:
            await self.credits.grant(workspace_id, self.settings.initial_credits, reason="initial allowance",
                                     key=f"workspace:{workspace_id}:initial")

    async def get(self, workspace_id: str) -> WorkspaceView:
        await self.ensure(workspace_id)
        return _view(await Workspace.get(id=workspace_id))

    async def all(self) -> list[WorkspaceView]:
        return [_view(row) for row in await Workspace.all().order_by("id")]

    # --- roles ------------------------------------------------------------------------------
    async def role(self, workspace_id: str, user_id: str) -> Role:
        row = await WorkspaceMember.filter(workspace_id=workspace_id, user_id=user_id).first()
        return row.role if row is not None else "member"  # type: ignore[return-value]

    async def set_role(self, workspace_id: str, user_id: str, role: Role) -> None:
        if role not in ROLES:
            raise ValueError(f"Unknown role {role!r}; roles are {', '.join(ROLES)}.")
        await self.ensure(workspace_id)
        if role == "member":
            await WorkspaceMember.filter(workspace_id=workspace_id, user_id=user_id).delete()
            return
        updated = await WorkspaceMember.filter(workspace_id=workspace_id, user_id=user_id).update(role=role)
        if not updated:
            try:
                await WorkspaceMember.create(workspace_id=workspace_id, user_id=user_id, role=role)
            except IntegrityError:
                await WorkspaceMember.filter(workspace_id=workspace_id, user_id=user_id).update(role=role)

    async def users_with(self, workspace_id: str, role: Role) -> list[str]:
        return await WorkspaceMember.filter(workspace_id=workspace_id, role=role).order_by("user_id").values_list("user_id", flat=True)  # type: ignore[return-value]

    # --- approval settings -------------------------------------------------------------------
    async def set_approver_group(self, workspace_id: str, usergroup_id: str | None) -> None:
        await self.ensure(workspace_id)
        await Workspace.filter(id=workspace_id).update(approver_group=usergroup_id or None)

    async def set_four_eyes(self, workspace_id: str, on: bool) -> None:
        await self.ensure(workspace_id)
        await Workspace.filter(id=workspace_id).update(four_eyes=on)

    async def can_approve(self, workspace_id: str, user_id: str, *, slack_admin: bool = False,
                          in_approver_group: bool = False) -> bool:
        """Admins (Slack's or ours), approvers, and members of the approver user group may approve."""
        if slack_admin or in_approver_group:
            return True
        return await self.role(workspace_id, user_id) in ("admin", "approver")

    async def can_administer(self, workspace_id: str, user_id: str, *, slack_admin: bool = False) -> bool:
        """API keys, credits and approvers are managed by admins only."""
        return slack_admin or await self.role(workspace_id, user_id) == "admin"
