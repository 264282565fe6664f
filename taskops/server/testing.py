"""An identity provider for tests and demos of the role check: several tokens, each one a
named user (jupyter-server's own provider knows one token and anonymous users only).

::

    c.ServerApp.identity_provider_class = "taskops.server.testing.TokenUsers"
    c.TokenUsers.users = {"<token of alice>": "alice", "<token of bob>": "bob"}
    c.TaskopsApp.roles = {"alice": ["system_admin"]}
    c.TaskopsApp.default_roles = []
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User
from traitlets import Dict, Unicode

__all__ = ["TokenUsers"]


class TokenUsers(IdentityProvider):
    """Each token in ``users`` logs in as the named user; the server's own token still
    works as jupyter-server's anonymous user."""

    users = Dict(key_trait=Unicode(), value_trait=Unicode(), help="token -> user name").tag(
        config=True
    )

    async def get_user_token(self, handler: Any) -> User | None:
        token = self.get_token(handler)
        name = self.users.get(token) if token else None
        if name is not None:
            return User(username=name, name=name, display_name=name)
        return await super().get_user_token(handler)
