"""Who may call the API: the ``system_admin`` role, from a mapping of users and groups.

jupyter-server authenticates (token, password, JupyterHub); this module only decides
which roles an authenticated user holds. A user's roles are those the ``roles`` mapping
gives their user name and each of their groups (keys ``group:<name>``), or
``default_roles`` when the mapping names neither.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["ADMIN_ROLE", "admin_refusal", "audit_name", "groups_of", "roles_of"]

ADMIN_ROLE = "system_admin"
"""The role every route of the API requires."""


def groups_of(user: Any) -> list[str]:
    """The JupyterHub groups of a jupyter-server ``User``: JupyterHub's single-user server
    keeps the hub's user model in ``hub_user``; other identity providers may set
    ``groups``. No groups when neither is there."""
    groups = getattr(user, "groups", None)
    if groups is None:
        hub_user = getattr(user, "hub_user", None)
        if isinstance(hub_user, Mapping):
            groups = hub_user.get("groups")
    if not isinstance(groups, Iterable) or isinstance(groups, str | bytes):
        return []
    return [str(group) for group in groups]


def roles_of(
    username: str,
    groups: Iterable[str],
    roles: Mapping[str, Sequence[str]],
    default_roles: Sequence[str],
) -> set[str]:
    """The roles of ``username`` in ``groups``: what ``roles`` gives the name and each
    ``group:<name>``; ``default_roles`` when it names none of them."""
    keys = [username, *(f"group:{group}" for group in groups)]
    named = [key for key in keys if key in roles]
    if not named:
        return set(default_roles)
    return {role for key in named for role in roles[key]}


def admin_refusal(
    user: Any, roles: Mapping[str, Sequence[str]], default_roles: Sequence[str]
) -> str | None:
    """Why the logged-in ``user`` (a jupyter-server ``User``) may not use taskops: a
    message when they do not hold ``ADMIN_ROLE``, else None."""
    if ADMIN_ROLE in roles_of(user.username, groups_of(user), roles, default_roles):
        return None
    return f"user {user.username!r} does not hold the {ADMIN_ROLE} role"


_ANONYMOUS_ID = re.compile(r"[0-9a-f]{32}")


def audit_name(user: Any) -> str:
    """The name a change by ``user`` is audited under: the user name, except for the
    anonymous user jupyter-server makes up for whoever holds its token (a random id per
    browser session): that one is ``<account running the server> (token)``."""
    username = str(user.username)
    name = str(getattr(user, "name", ""))
    if _ANONYMOUS_ID.fullmatch(username) and name.startswith("Anonymous "):
        try:
            account = getpass.getuser()
        except (KeyError, OSError):
            account = f"uid-{os.getuid()}"
        return f"{account} (token)"
    return username
