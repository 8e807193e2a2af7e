"""Roles live here: admins and approvers (ours or Slack's) and approver-group members may approve."""

from __future__ import annotations

import pytest

from core.services import Services


async def test_roles_and_who_may_approve(services: Services) -> None:
    ws = services.workspaces
    assert await ws.role("T1", "U1") == "member"
    assert not await ws.can_approve("T1", "U1")
    await ws.set_role("T1", "U1", "approver")
    await ws.set_role("T1", "U2", "admin")
    assert await ws.can_approve("T1", "U1") and await ws.can_approve("T1", "U2")
    assert await ws.can_approve("T1", "U3", slack_admin=True)
    assert await ws.can_approve("T1", "U4", in_approver_group=True)
    assert await ws.users_with("T1", "approver") == ["U1"]
    assert await ws.can_administer("T1", "U2") and not await ws.can_administer("T1", "U1")
    await ws.set_role("T1", "U1", "member")
    assert not await ws.can_approve("T1", "U1")
    with pytest.raises(ValueError):
        await ws.set_role("T1", "U1", "owner")  # type: ignore[arg-type]


async def test_approver_group_and_four_eyes_are_stored(services: Services) -> None:
    ws = services.workspaces
    view = await ws.get("T1")
    assert view.four_eyes is True and view.approver_group is None
    await ws.set_approver_group("T1", "S123")
    await ws.set_four_eyes("T1", False)
    view = await ws.get("T1")
    assert view.approver_group == "S123" and view.four_eyes is False
