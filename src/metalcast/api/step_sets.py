"""Named sets of steps: deploy templates (API 1.55) and runbooks (1.92).

Both are named like the trait that selects them and hold a non-empty list of steps
of the cleaning interfaces, each step at most once, ranked by an integer (a deploy
template's ``priority``, a runbook's ``order``).  :class:`StepSet` checks them with
Ironic's rules and says what to fix.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from metalcast.api.schema import check_trait, describe
from metalcast.errors import InvalidInput

#: the interfaces a step may belong to (Ironic's cleaning interface priorities)
STEP_INTERFACES = ("bios", "deploy", "firmware", "management", "power", "raid", "vendor")
#: the largest rank (Ironic stores it in an integer column)
MAX_RANK = 2**31 - 1


@dataclass(frozen=True, slots=True)
class StepSet:
    """The checks of one kind of step set."""

    #: "deploy template", "runbook"
    what: str
    #: what one step is called: "deploy step", "runbook step"
    step_name: str
    #: the integer key that ranks the steps: "priority", "order"
    rank: str
    #: whether a step must give ``args`` (a runbook's may leave them out: ``{}``)
    args_required: bool
    #: the first words of the duplicate-steps message
    duplicates_message: str
    #: the request field that holds the steps
    field: str = "steps"

    def check_name(self, name: str, value: Any) -> None:
        """A set is named like the trait that selects it.  Raises InvalidInput."""
        try:
            check_trait(value)
        except InvalidInput:
            raise InvalidInput(
                f"Invalid value for field '{name}': {describe(value)}; a {self.what} is named "
                "like a trait: a standard trait in upper case or CUSTOM_[A-Z0-9_]+, at most "
                "255 characters."
            ) from None

    def check_step(self, index: int, step: object) -> dict[str, Any]:
        """One step, its rank as an integer, ``args`` filled in.  Raises InvalidInput."""
        where = f"{self.field}[{index}]"
        if not isinstance(step, dict):
            raise InvalidInput(f"Invalid {where}: {describe(step)[:80]} is not an object.")
        required = {"interface", "step", self.rank} | ({"args"} if self.args_required else set())
        unknown = sorted(set(step) - required - {"args"})
        missing = sorted(required - set(step))
        if unknown or missing:
            keys = sorted(required | {"args"})
            optional = "" if self.args_required else " (args may be left out)"
            raise InvalidInput(
                f"Invalid {where}: a {self.step_name} has exactly the keys "
                f"{', '.join(keys[:-1])} and {keys[-1]}{optional} (unknown: "
                f"{', '.join(unknown) or 'none'}; missing: {', '.join(missing) or 'none'})."
            )
        if step["interface"] not in STEP_INTERFACES:
            raise InvalidInput(
                f"Invalid {where}.interface {describe(step['interface'])}; acceptable values "
                f"are: {', '.join(STEP_INTERFACES)}."
            )
        if not isinstance(step["step"], str) or not step["step"]:
            raise InvalidInput(f"Invalid {where}.step: a non-empty string is required.")
        args = step.get("args", {})
        if not isinstance(args, dict):
            raise InvalidInput(f"Invalid {where}.args: an object is required.")
        return {**step, "args": args, self.rank: self._rank(where, step[self.rank])}

    def _rank(self, where: str, value: object) -> int:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 12:
            number = int(value)
        if number is None or not 0 <= number <= MAX_RANK:
            raise InvalidInput(
                f"Invalid {where}.{self.rank} {describe(value)[:40]}: an integer from 0 to "
                f"{MAX_RANK} is required."
            )
        return number

    def check_steps(self, value: object) -> list[dict[str, Any]]:
        """At least one valid step, no interface and step twice.  Raises InvalidInput."""
        if not isinstance(value, list) or not value:
            raise InvalidInput(
                f"Invalid value for field '{self.field}': a non-empty list is required."
            )
        steps = [self.check_step(i, s) for i, s in enumerate(value)]
        counts = Counter((s["interface"], s["step"]) for s in steps)
        duplicates = sorted(f"interface: {i}, step: {s}" for (i, s), n in counts.items() if n > 1)
        if duplicates:
            raise InvalidInput(f"{self.duplicates_message} Duplicates: {'; '.join(duplicates)}.")
        return steps


DEPLOY_TEMPLATE = StepSet(
    what="deploy template",
    step_name="deploy step",
    rank="priority",
    args_required=True,
    duplicates_message="Deploy template invalid: Duplicate deploy steps. A template cannot "
    "have multiple deploy steps with the same interface and step.",
)
#: the ``deploy_steps`` of a deploy request (Ironic 1.69): a deploy template's steps
DEPLOY_STEPS = StepSet(
    what="deploy request",
    step_name="deploy step",
    rank="priority",
    args_required=True,
    duplicates_message="Invalid deploy_steps: a deploy cannot run the same interface and "
    "step twice.",
    field="deploy_steps",
)
RUNBOOK = StepSet(
    what="runbook",
    step_name="runbook step",
    rank="order",
    args_required=False,
    duplicates_message="Runbook invalid: Duplicate steps. A runbook cannot have multiple "
    "steps with the same interface and step.",
)
