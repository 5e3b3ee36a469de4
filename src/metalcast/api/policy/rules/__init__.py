"""The default rules: Ironic's secure-RBAC defaults, plus metalcast's own.

Every rule an endpoint enforces is listed once, as data (:class:`Rule`): its name, its
default check string (oslo.policy syntax), what it guards and what it is checked
against (:class:`Subject`).  A policy file overrides any of them by name
(``api.policy_file``, docs/policy.md).  :mod:`.base` holds the personas the check
strings are written with; :mod:`.nodes`, :mod:`.resources` and :mod:`.services` the
rules.
"""

from __future__ import annotations

from metalcast.api.policy.rules.base import BASE_RULES, Rule, Subject
from metalcast.api.policy.rules.nodes import NODE_RULES
from metalcast.api.policy.rules.resources import (
    CHASSIS_RULES,
    CONDUCTOR_RULES,
    DRIVER_RULES,
    PORT_RULES,
    PORTGROUP_RULES,
    SHARD_RULES,
    VOLUME_RULES,
)
from metalcast.api.policy.rules.services import (
    ALLOCATION_RULES,
    DEPLOY_TEMPLATE_RULES,
    EVENT_RULES,
    INSPECTION_RULE_RULES,
    METALCAST_RULES,
    RUNBOOK_RULES,
    WEBHOOK_RULES,
)

__all__ = ["BASE_RULES", "BY_NAME", "RULES", "Rule", "Subject"]

RULES: tuple[Rule, ...] = (
    *NODE_RULES,
    *PORT_RULES,
    *PORTGROUP_RULES,
    *CHASSIS_RULES,
    *DRIVER_RULES,
    *VOLUME_RULES,
    *CONDUCTOR_RULES,
    *SHARD_RULES,
    *ALLOCATION_RULES,
    *EVENT_RULES,
    *WEBHOOK_RULES,
    *DEPLOY_TEMPLATE_RULES,
    *RUNBOOK_RULES,
    *INSPECTION_RULE_RULES,
    *METALCAST_RULES,
)

BY_NAME: dict[str, Rule] = {rule.name: rule for rule in (*BASE_RULES, *RULES)}
