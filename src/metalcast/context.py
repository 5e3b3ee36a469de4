"""Who is asking: the identity every API request carries down to the conductor."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RequestContext:
    """The caller of one request.  ``roles`` drive policy; ``project`` scopes nodes."""

    user: str | None = None
    project: str | None = None
    roles: frozenset[str] = frozenset({"admin"})
    request_id: str = field(default_factory=lambda: f"req-{uuid.uuid4()}")

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def who(self) -> str:
        """How history records name the caller."""
        return self.user or self.project or "admin"


#: the identity of the conductor's own periodic work
SYSTEM = RequestContext(user="metalcast-conductor", roles=frozenset({"admin"}))
