"""Parsed rules turned into plain Python functions, so that a check costs microseconds.

oslo.policy evaluates a rule by walking its check tree and, at every node of it,
calling ``inspect.getfullargspec`` to decide how to call the node: about 70 µs a
node, 150 to 350 µs for one of Ironic's composite rules, on every request.  Here the
tree oslo.policy parsed is compiled once into closures that do what oslo.policy's
built-in checks do (``rule:``, ``role:``, ``field:%(target)s`` comparisons, ``and``,
``or``, ``not``, ``@``, ``!``), with oslo.policy's exact semantics (string comparison
after ``%`` formatting with the target, case-insensitive roles, dotted paths into the
credentials).  Any other kind of check (``http:``, checks from plugins) is left to
oslo.policy itself.  ``test_policy_compiled.py`` holds the two to the same answers.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import Any

from oslo_policy import _checks
from oslo_policy import policy as oslo

#: ``(target, creds) -> allowed``
Evaluate = Callable[[Mapping[str, Any], dict[str, Any]], bool]


class CompiledRules:
    """The enforcer's rules, compiled; rules refer to each other by name at call time."""

    def __init__(self, enforcer: oslo.Enforcer) -> None:
        self._enforcer = enforcer
        self._rules: dict[str, Evaluate] = {
            name: self._compile(check) for name, check in enforcer.rules.items()
        }

    def check(self, name: str, target: Mapping[str, Any], creds: dict[str, Any]) -> bool:
        """Whether rule ``name`` admits ``creds`` on ``target`` (False: no such rule)."""
        evaluate = self._rules.get(name)
        return evaluate is not None and evaluate(target, creds)

    def _compile(self, check: _checks.BaseCheck) -> Evaluate:
        kind = type(check)
        if kind is _checks.TrueCheck:
            return lambda target, creds: True
        if kind is _checks.FalseCheck:
            return lambda target, creds: False
        if kind is _checks.AndCheck:
            return _all([self._compile(c) for c in check.rules])  # type: ignore[attr-defined]
        if kind is _checks.OrCheck:
            return _any([self._compile(c) for c in check.rules])  # type: ignore[attr-defined]
        if kind is _checks.NotCheck:
            inner = self._compile(check.rule)  # type: ignore[attr-defined]
            return lambda target, creds: not inner(target, creds)
        if kind is _checks.RuleCheck:
            return self._rule(check)  # type: ignore[arg-type]
        if kind is _checks.RoleCheck:
            return _role(check)  # type: ignore[arg-type]
        if kind is _checks.GenericCheck:
            compiled = _generic(check)  # type: ignore[arg-type]
            if compiled is not None:
                return compiled
        return self._fallback(check)

    def _rule(self, check: _checks.Check) -> Evaluate:
        name = check.match
        return lambda target, creds: self.check(name, target, creds)

    def _fallback(self, check: _checks.BaseCheck) -> Evaluate:
        enforcer = self._enforcer
        return lambda target, creds: bool(enforcer.enforce(check, target, dict(creds)))


# plain loops: on this path they cost less than all()/any() over a generator


def _all(parts: list[Evaluate]) -> Evaluate:
    def every(target: Mapping[str, Any], creds: dict[str, Any]) -> bool:
        for part in parts:  # noqa: SIM110
            if not part(target, creds):
                return False
        return True

    return every


def _any(parts: list[Evaluate]) -> Evaluate:
    def some(target: Mapping[str, Any], creds: dict[str, Any]) -> bool:
        for part in parts:  # noqa: SIM110
            if part(target, creds):
                return True
        return False

    return some


def _role(check: _checks.Check) -> Evaluate:
    match = check.match

    def role(target: Mapping[str, Any], creds: dict[str, Any]) -> bool:
        try:
            wanted = match % target
        except KeyError:
            return False
        if "roles" not in creds:
            return False
        return wanted.lower() in [r.lower() for r in creds["roles"]]

    return role


def _generic(check: _checks.Check) -> Evaluate | None:
    """``kind:match``; None when oslo.policy itself must evaluate it."""
    match = check.match
    try:
        literal: str | None = str(ast.literal_eval(check.kind))
    except ValueError:
        literal = None
    except Exception:  # oslo.policy would raise on every check; let it say so
        return None
    path = check.kind.split(".")

    def generic(target: Mapping[str, Any], creds: dict[str, Any]) -> bool:
        try:
            wanted = match % target
        except KeyError:
            return False
        if literal is not None:
            return wanted == literal
        return _find(creds, path, wanted)

    return generic


def _find(value: Any, path: list[str], wanted: str) -> bool:
    """oslo.policy's ``GenericCheck._find_in_dict``: a dotted path into the
    credentials, any element of a list matching."""
    if not path:
        return wanted == str(value)
    try:
        value = value[path[0]]
    except KeyError:
        return False
    rest = path[1:]
    if isinstance(value, list):
        return any(_find(item, rest, wanted) for item in value)
    return _find(value, rest, wanted)
