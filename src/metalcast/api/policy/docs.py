"""The rule table of docs/policy.md and a sample policy file, generated from the rules.

Who a rule lets in is not written by hand: every rule is evaluated for each typical
caller (:mod:`.callers`) against a node owned by one project and leased to another
(an allocation and a token of the caller's own, for those rules), and the callers
it admits are named.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable

from metalcast.api.auth import PUBLIC_PATHS
from metalcast.api.policy import (
    Policy,
    allocation_target,
    node_target,
    runbook_target,
    token_target,
)
from metalcast.api.policy.callers import (
    CALLERS,
    LESSEE_PROJECT,
    OWNER_PROJECT,
    Caller,
    Scope,
)
from metalcast.api.policy.rules import BASE_RULES, RULES, Rule, Subject

_NODE = node_target(OWNER_PROJECT, LESSEE_PROJECT)
_ALLOCATION = allocation_target(OWNER_PROJECT)
_RUNBOOK = runbook_target(OWNER_PROJECT)
_SAMPLE_HEADER = """\
# metalcast policy file (oslo.policy YAML): every rule, commented out, with its
# default. Uncomment a rule and change its check string to override it, then point
# api.policy_file (METALCAST_API__POLICY_FILE) at this file; docs/policy.md explains
# the rules. A rule left out keeps its default.
"""
#: families of rules, in the order the docs list them: (name prefix, title)
_FAMILIES = (
    ("baremetal:node:", "Nodes"),
    ("baremetal:port:", "Ports"),
    ("baremetal:portgroup:", "Portgroups"),
    ("baremetal:volume:", "Volume connectors and targets"),
    ("baremetal:chassis:", "Chassis"),
    ("baremetal:driver:", "Drivers and the ramdisk agent"),
    ("baremetal:conductor:", "Conductors"),
    ("baremetal:allocation:", "Allocations"),
    ("baremetal:events:", "Events"),
    ("baremetal:deploy_template:", "Deploy templates"),
    ("baremetal:runbook:", "Runbooks"),
    ("", "metalcast's own"),
)
_ALLOCATION_RULES = ("baremetal:node:get_allocation", "baremetal:node:delete_allocation")


def admitted(policy: Policy, rule: Rule, *, own: bool = True) -> list[Caller]:
    """The typical callers ``rule`` lets in; for token rules, with their own token
    (``own``) or someone else's."""
    allowed = []
    for caller in CALLERS:
        context = caller.context()
        target = _target(rule, caller, own=own)
        if policy.allows(context, rule.name, target):
            allowed.append(caller)
    return allowed


def _target(rule: Rule, caller: Caller, *, own: bool) -> dict[str, str] | None:
    if rule.subject is Subject.NODE:
        return _NODE
    if rule.subject is Subject.ALLOCATION:
        return {**_ALLOCATION, **_NODE}
    if rule.subject is Subject.RUNBOOK:
        return _RUNBOOK
    if rule.subject is Subject.TOKEN:
        return token_target(caller.user if own else "someone-else")
    return None


def who(policy: Policy, rule: Rule) -> str:
    """In plain words, whom ``rule`` lets in."""
    callers = admitted(policy, rule)
    if rule.subject is Subject.TOKEN:
        anyone = admitted(policy, rule, own=False)
        own = [c for c in callers if c not in anyone]
        parts = [f"{describe(anyone, rule)} (anyone's)"] if anyone else []
        if own:
            parts.append(f"{describe(own, rule)} (their own)")
        return "; ".join(parts) or "nobody"
    return describe(callers, rule)


def describe(callers: Iterable[Caller], rule: Rule) -> str:
    """``system admin, member; owner and lessee project admin, manager``."""
    chosen = list(callers)
    if any(c.scope is Scope.NONE for c in chosen):
        # a rule that lets everyone in ("@") still sits behind the 401 every path but
        # the public ones answers to a caller without credentials
        if all(PUBLIC_PATHS.match(path) for _, path in rule.operations):
            return "anyone, even without credentials"
        return "anyone with valid credentials"
    roles = {scope: [c.role for c in chosen if c.scope is scope] for scope in Scope}
    if not any(roles.values()):
        return "nobody (a policy file may let someone in)"
    parts = []
    if roles[Scope.SYSTEM]:
        parts.append(f"system {', '.join(map(str, roles[Scope.SYSTEM]))}")
    parts.extend(_projects(roles, rule))
    return "; ".join(parts)


def _projects(roles: dict[Scope, list[str | None]], rule: Rule) -> list[str]:
    owner, lessee, other = (roles[s] for s in (Scope.OWNER, Scope.LESSEE, Scope.OTHER))
    if owner == lessee == other and owner:
        return [f"any project's {', '.join(map(str, owner))}"]
    owned = _OWNED.get(rule.subject)
    named = [("owner project", owner), ("lessee project", lessee)]
    if owned is not None:
        named = [(f"{owned} owner project", owner)]
    if other:
        named.append(("any other project", other))
    if owner and owner == lessee and owned is None:
        named[:2] = [("owner and lessee project", owner)]
    return [f"{name} {', '.join(map(str, found))}" for name, found in named if found]


#: objects other than nodes that an owner project owns (no lessee)
_OWNED = {Subject.ALLOCATION: "allocation", Subject.RUNBOOK: "runbook"}


def _family(name: str) -> str:
    if name in _ALLOCATION_RULES:
        return "Allocations"
    return next(title for prefix, title in _FAMILIES if name.startswith(prefix))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _guards(rule: Rule) -> str:
    guarded = "<br>".join(f"`{method} {path}`" for method, path in rule.operations)
    return f"{guarded}<br>*{rule.note}*" if rule.note else guarded


def markdown(policy: Policy) -> str:
    """The rule tables of docs/policy.md: one per family of rules, then the personas
    the check strings are written with."""
    lines: list[str] = []
    for _, title in _FAMILIES:
        family = [rule for rule in RULES if _family(rule.name) == title]
        lines += [f"### {title}", "", "| Rule | Guards | Default check string | Lets in |"]
        lines.append("|---|---|---|---|")
        for rule in family:
            check = f"`{_cell(rule.check)}`" if rule.check else '`""` (empty: no check)'
            lines.append(
                f"| `{rule.name}` | {_guards(rule)} | {check} | {_cell(who(policy, rule))} |"
            )
        lines.append("")
    lines += ["### Personas", "", "| Rule | Default check string | Meaning |", "|---|---|---|"]
    for rule in BASE_RULES:
        lines.append(f"| `{rule.name}` | `{_cell(rule.check)}` | {_cell(rule.description)} |")
    return "\n".join(lines) + "\n"


def sample() -> str:
    """A policy file with every rule commented out at its default (as
    ``oslopolicy-sample-generator`` writes one)."""
    blocks = [_SAMPLE_HEADER]
    for rule in (*BASE_RULES, *RULES):
        lines = textwrap.wrap(rule.description, 78, initial_indent="# ", subsequent_indent="# ")
        lines += [f"# {method} {path}" for method, path in rule.operations]
        lines.append(f"#{json.dumps(rule.name)}: {json.dumps(rule.check)}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def listing(policy: Policy) -> str:
    """Every rule in force, one ``name: check string`` a line."""
    return "".join(f"{name}: {check}\n" for name, check in sorted(policy.rules().items()))
