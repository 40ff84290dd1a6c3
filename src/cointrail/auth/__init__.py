"""Who is acting: principals and their roles.

Roles (one per API key or local user):

- ``analyst``: investigates: reads the chain, traces, screens, works in the cases it may access,
  drafts legal requests;
- ``approver``: an analyst who may also approve legal requests;
- ``auditor``: reads audit and custody logs, changes nothing;
- ``admin``: manages keys and everything else.

Every component that acts for someone takes a `Principal`; `require_role` is the one check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from cointrail.errors import PermissionDeniedError


class Role(StrEnum):
    ANALYST = "analyst"
    APPROVER = "approver"
    AUDITOR = "auditor"
    ADMIN = "admin"


#: What each role may do, by capability.
CAPABILITIES: dict[Role, frozenset[str]] = {
    Role.ANALYST: frozenset({"read", "investigate", "draft"}),
    Role.APPROVER: frozenset({"read", "investigate", "draft", "approve"}),
    Role.AUDITOR: frozenset({"read", "audit"}),
    Role.ADMIN: frozenset({"read", "investigate", "draft", "approve", "audit", "admin"}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated person or system: `name` as it appears in logs, its `role`, and the
    id of the API key it used (None for a local CLI user). `cases` restricts the case
    references it may open (None: all)."""

    name: str
    role: Role
    key_id: str | None = None
    cases: frozenset[str] | None = field(default=None)

    def can(self, capability: str) -> bool:
        return capability in CAPABILITIES[self.role]

    def may_open_case(self, reference: str) -> bool:
        return self.cases is None or reference in self.cases


__all__ = ["CAPABILITIES", "PermissionDeniedError", "Principal", "Role", "require"]


def require(principal: Principal, capability: str, action: str) -> None:
    """Raise PermissionDeniedError unless `principal` has `capability`; `action` names what
    was attempted, for the message."""
    if not principal.can(capability):
        allowed = sorted(str(r) for r, caps in CAPABILITIES.items() if capability in caps)
        raise PermissionDeniedError(
            f"{principal.name} ({principal.role}) may not {action}; "
            f"it needs one of the roles: {', '.join(allowed)}"
        )
