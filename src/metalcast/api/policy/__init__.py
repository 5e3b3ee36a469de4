"""Who may do what: Ironic's secure RBAC, on oslo.policy.

One :class:`Policy` per application (:func:`load`, from ``api.policy_file``) holds an
oslo.policy ``Enforcer`` with its own ``ConfigOpts``: the defaults of
:mod:`metalcast.api.policy.rules` (Ironic's rule names and secure-RBAC defaults, plus
metalcast's own), overridden by the operator's policy file, parsed once at start-up.
A check reads nothing from disk.

:meth:`Policy.enforce` is the one check.  The caller's credentials are
:meth:`RequestContext.policy_credentials <metalcast.context.RequestContext.policy_credentials>`;
the target carries Ironic's keys (``node.owner``, ``node.lessee``,
``allocation.owner``, ``runbook.owner``, ``token.user_id``; :func:`node_target` and
friends) on top of the credentials, as Ironic's ``check_owner_policy`` builds it.
Endpoints reach it through :meth:`metalcast.api.endpoint.Call.enforce`; rules that
look at the caller alone are checked by the endpoint decorator before the handler
runs, the others once the object is loaded (:mod:`metalcast.api.lookup`).

403 or 404, exactly as Ironic answers: whoever may not ``baremetal:node:get`` a node
is told it does not exist (404, the ``hide`` message), whatever they asked to do with
it; whoever sees it but may not do what they asked gets 403 ``Access was denied to
the following resource: <rule>``.  Creating something on a node (a port, a volume
target) checks the create rule against the node without hiding it (403), as Ironic.

Errors::

    MetalcastError
    ├── PolicyFileError   api.policy_file is missing or wrong: refused at start
    ├── Forbidden (403)   the rule refuses the caller
    └── NotFound (404)    the caller may not see the object (``hide``)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from oslo_config import cfg
from oslo_policy import policy as oslo

from metalcast.api.policy.compiled import CompiledRules
from metalcast.api.policy.rules import BASE_RULES, BY_NAME, RULES, Rule
from metalcast.context import RequestContext
from metalcast.errors import Forbidden, MetalcastError, NotFound

log = logging.getLogger("metalcast.api.policy")

#: what a check is made against, beyond the caller's credentials
Target = Mapping[str, str]
#: names of the rule families a policy file may set that metalcast does not use
_OWN_PREFIXES = ("baremetal:", "identity:", "audit:")


class PolicyFileError(MetalcastError):
    """``api.policy_file`` cannot be used: the server refuses to start."""


class UnknownRule(LookupError):
    """A programming error: code enforced a rule that is not in the table."""


# ------------------------------------------------------------------------- targets


def node_target(owner: str | None, lessee: str | None) -> dict[str, str]:
    """The target of a node rule (Ironic's ``node.owner``, ``node.lessee``)."""
    return _without_none({"node.owner": owner, "node.lessee": lessee})


def allocation_target(
    owner: str | None, *, node_owner: str | None = None, node_lessee: str | None = None
) -> dict[str, str]:
    """The target of an allocation rule; a node's allocation carries the node too."""
    return _without_none(
        {"allocation.owner": owner, "node.owner": node_owner, "node.lessee": node_lessee}
    )


def runbook_target(owner: str | None) -> dict[str, str]:
    """The target of a runbook rule (Ironic's ``runbook.owner``)."""
    return _without_none({"runbook.owner": owner})


def token_target(user_id: str | None) -> dict[str, str]:
    """The target of an API token rule: whose token it is."""
    return _without_none({"token.user_id": user_id})


def credentials(context: RequestContext) -> dict[str, Any]:
    """oslo.policy's ``creds`` for ``context``, unknown values left out.

    Leaving out None matters: oslo.policy compares as strings, so a caller without a
    project would otherwise match ``project_id:%(node.owner)s`` on a node without
    an owner ("None" == "None").
    """
    creds = _without_none(context.policy_credentials())
    if creds.get("system_scope"):
        creds["system"] = creds["system_scope"]  # as oslo.policy's enforce() adds it
    return creds


def _without_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# -------------------------------------------------------------------------- policy


class Policy:
    """The rules in force, checked against request contexts."""

    def __init__(self, enforcer: oslo.Enforcer) -> None:
        self._enforcer = enforcer
        self._compiled = CompiledRules(enforcer)

    def allows(self, context: RequestContext, rule: str, target: Target | None = None) -> bool:
        """Whether ``rule`` lets ``context`` in (on ``target`` when given).

        Raises:
            UnknownRule: ``rule`` is not a rule of the table (a bug in the caller).
        """
        if rule not in BY_NAME:
            raise UnknownRule(f"policy rule '{rule}' is not defined")
        creds = credentials(context)
        full = creds if target is None else {**creds, **target}
        return self._compiled.check(rule, full, creds)

    def enforce(
        self,
        context: RequestContext,
        rule: str,
        target: Target | None = None,
        *,
        hide: str | None = None,
    ) -> None:
        """Let ``context`` through ``rule`` or raise.

        Raises:
            NotFound: refused and ``hide`` given (its message): the caller may not
                know that the object exists.
            Forbidden: refused otherwise.
            UnknownRule: ``rule`` is not a rule of the table.
        """
        if self.allows(context, rule, target):
            return
        if hide is not None:
            raise NotFound(hide)
        raise forbidden(rule)

    def list_scope(self, context: RequestContext, kind: str) -> str | None:
        """Which ``kind`` objects (node, port, portgroup, volume, allocation) a listing
        may show: all (None) under ``baremetal:<kind>:list_all``, else the caller's
        project's, under ``baremetal:<kind>:list`` (Ironic's ``check_list_policy``).

        Raises:
            Forbidden: neither rule lets the caller list (or it has no project).
        """
        if self.allows(context, f"baremetal:{kind}:list_all"):
            return None
        if not context.project:
            raise forbidden(f"baremetal:{kind}:list_all")
        self.enforce(context, f"baremetal:{kind}:list")
        return context.project

    def node_redactions(self, context: RequestContext) -> NodeRedactions | None:
        """What node fields ``context`` sees redacted, or None when it sees them all
        (``baremetal:node:get:filter_threshold``)."""
        if self.allows(context, "baremetal:node:get:filter_threshold"):
            return None
        return NodeRedactions(self, context)

    def rules(self) -> dict[str, str]:
        """Every rule in force, as check strings (defaults merged with the file)."""
        return {name: str(check) for name, check in self._enforcer.rules.items()}


def forbidden(rule: str) -> Forbidden:
    """Ironic's 403 for ``rule``."""
    return Forbidden(f"Access was denied to the following resource: {rule}")


# ----------------------------------------------------------------- node redaction

#: node field -> the rule that shows it, and what is shown instead (Ironic's texts)
REDACTED: dict[str, tuple[str, Callable[[], object]]] = {
    "last_error": (
        "baremetal:node:get:last_error",
        lambda: "** Value Redacted - Requires baremetal:node:get:last_error permission. **",
    ),
    "reservation": (
        "baremetal:node:get:reservation",
        lambda: "** Redacted - requires baremetal:node:get:reservation permission. **",
    ),
    "driver_internal_info": (
        "baremetal:node:get:driver_internal_info",
        lambda: {
            "content": "** Redacted - Requires baremetal:node:get:driver_internal_info "
            "permission. **"
        },
    ),
    "driver_info": (
        "baremetal:node:get:driver_info",
        lambda: {"content": "** Redacted - requires baremetal:node:get:driver_info permission. **"},
    ),
}


class NodeRedactions:
    """The node fields one caller sees redacted, per (owner, lessee) pair.

    The answer depends only on the node's owner and lessee, so a listing of a
    thousand nodes costs a handful of checks, not four per node.
    """

    def __init__(self, policy: Policy, context: RequestContext) -> None:
        self._policy = policy
        self._context = context
        self._memo: dict[tuple[str | None, str | None], tuple[str, ...]] = {}

    def fields(self, owner: str | None, lessee: str | None) -> tuple[str, ...]:
        """The fields of a node with this owner and lessee to redact."""
        key = (owner, lessee)
        hidden = self._memo.get(key)
        if hidden is None:
            target = node_target(owner, lessee)
            hidden = tuple(
                field
                for field, (rule, _) in REDACTED.items()
                if not self._policy.allows(self._context, rule, target)
            )
            self._memo[key] = hidden
        return hidden

    def apply(self, doc: dict[str, Any], *, owner: str | None, lessee: str | None) -> None:
        """Redact the fields of node document ``doc`` the caller may not see."""
        for field in self.fields(owner, lessee):
            if field in doc:
                doc[field] = REDACTED[field][1]()


# ---------------------------------------------------------------------- building


def load(policy_file: Path | None) -> Policy:
    """The policy: the default rules, overridden by ``policy_file`` when given.

    Raises:
        PolicyFileError: the file is missing, unreadable, not YAML/JSON, not a mapping
            of rule names to check strings, has a check string that does not parse,
            or refers to rules that do not exist (or to itself).
    """
    overrides = read_policy_file(policy_file) if policy_file is not None else {}
    checks = {rule.name: rule.check for rule in (*BASE_RULES, *RULES)}
    _warn_unused(policy_file, overrides)
    checks.update(overrides)
    enforcer = oslo.Enforcer(_config(), use_conf=False)
    enforcer.register_defaults([_default(rule) for rule in (*BASE_RULES, *RULES)])
    enforcer.set_rules(oslo.Rules.from_dict(checks), overwrite=True, use_conf=False)
    try:
        enforcer.check_rules(raise_on_violation=True)
    except oslo.InvalidDefinitionError as exc:
        raise PolicyFileError(
            f"api.policy_file {policy_file}: these rules refer to rules that do not exist "
            f"or to themselves: {exc}. Fix the references (docs/policy.md lists every rule)."
        ) from None
    return Policy(enforcer)


def read_policy_file(path: Path) -> dict[str, str]:
    """The rules a policy file sets, checked to parse.

    Raises:
        PolicyFileError: see :func:`load`.
    """
    what = f"api.policy_file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyFileError(
            f"{what} does not exist. Create it (`metalcast policy sample` prints every "
            f"rule with its default) or unset api.policy_file to use the defaults."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyFileError(f"{what} cannot be read: {exc}") from None
    try:
        parsed = oslo.parse_file_contents(text)
    except ValueError as exc:
        raise PolicyFileError(f"{what} is not valid YAML or JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise PolicyFileError(
            f'{what} must map rule names to check strings ("baremetal:node:get": "..."), '
            f"not hold a {type(parsed).__name__}."
        )
    return {str(name): _check_string(what, name, check) for name, check in parsed.items()}


def _check_string(what: str, name: object, check: object) -> str:
    if not isinstance(check, str):
        raise PolicyFileError(
            f"{what}: rule '{name}' must be a check string (quote it), not "
            f"{type(check).__name__} {check!r}."
        )
    # oslo.policy turns a check string it cannot parse into "deny" and logs a
    # traceback; a typo in a policy file must stop the server instead, with one line
    parser_log = logging.getLogger("oslo_policy._parser")
    parser_log.disabled, was = True, parser_log.disabled
    try:
        parsed = str(oslo.Rules.from_dict({"x": check})["x"])
    finally:
        parser_log.disabled = was
    if parsed == "!" and check.replace("(", "").replace(")", "").strip() != "!":
        raise PolicyFileError(f"{what}: rule '{name}': cannot parse the check string {check!r}.")
    return check


def _warn_unused(policy_file: Path | None, overrides: Mapping[str, str]) -> None:
    unused = sorted(
        name for name in overrides if name.startswith(_OWN_PREFIXES) and name not in BY_NAME
    )
    if unused:
        log.warning(
            "api.policy_file %s sets rules metalcast does not have (ignored): %s",
            policy_file,
            ", ".join(unused),
        )


def _config() -> cfg.ConfigOpts:
    """oslo.config options of our own: no global CONF, no config files searched."""
    conf = cfg.ConfigOpts()
    conf([], project="metalcast", default_config_files=[], default_config_dirs=[])
    return conf


def _default(rule: Rule) -> oslo.RuleDefault:
    if not rule.operations:
        return oslo.RuleDefault(rule.name, rule.check, description=rule.description)
    return oslo.DocumentedRuleDefault(
        rule.name,
        rule.check,
        rule.description,
        [{"method": method, "path": path} for method, path in rule.operations],
    )
