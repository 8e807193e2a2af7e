"""Who may do what, as Valid Email Checker has it: Slack says who is an admin or in a group, the core decides.

Members verify, connect and start jobs. Approvers (workspace admins, Listwarden admins and
approvers, members of the approvers user group) approve cleanups; only admins manage API keys,
credits and approvers. Slack cannot hide a button from some users, so every check happens when
the button is pressed, through `core.workspaces` (`can_approve`, `can_administer`).
"""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core.workspaces import Workspaces


async def is_slack_admin(client: AsyncWebClient, user_id: str) -> bool:
    try:
        user = (await client.users_info(user=user_id))["user"]
    except SlackApiError:
        return False
    return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))


async def in_usergroup(client: AsyncWebClient, usergroup_id: str | None, user_id: str) -> bool:
    if not usergroup_id:
        return False
    try:
        members = (await client.usergroups_users_list(usergroup=usergroup_id))["users"]
    except SlackApiError:
        return False
    return user_id in members


async def can_approve(workspaces: Workspaces, client: AsyncWebClient, team_id: str, user_id: str) -> bool:
    workspace = await workspaces.get(team_id)
    return await workspaces.can_approve(team_id, user_id, slack_admin=await is_slack_admin(client, user_id),
                                        in_approver_group=await in_usergroup(client, workspace.approver_group, user_id))


async def can_administer(workspaces: Workspaces, client: AsyncWebClient, team_id: str, user_id: str) -> bool:
    return await workspaces.can_administer(team_id, user_id, slack_admin=await is_slack_admin(client, user_id))
