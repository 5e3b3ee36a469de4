"""docs/policy.md and the sample policy file say what the code does, and its rule
tables say what the persona matrix (tests/support/policy_matrix.py) expects, which
the route walks and the integration tests with real clients hold the API to."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from oslo_policy import policy as oslo
from policy_matrix import EXPECTED, EXPECTED_ON_OTHERS_TOKEN, NAMES, PUBLIC_PATHS

from metalcast.api import policy
from metalcast.api.policy.__main__ import main
from metalcast.api.policy.docs import markdown, sample
from metalcast.api.policy.rules import BASE_RULES, RULES

DOC = Path(__file__).parents[3] / "docs" / "policy.md"
GENERATED = re.compile(
    r"<!-- BEGIN GENERATED: metalcast policy list --markdown -->\n\n(.*)\n<!-- END GENERATED -->",
    re.S,
)


def test_docs_policy_md_holds_the_rules_the_code_has() -> None:
    found = GENERATED.search(DOC.read_text())
    assert found, "docs/policy.md lost its generated section markers"
    assert found.group(1) == markdown(policy.load(None)), (
        "docs/policy.md is stale: regenerate its rule tables with "
        "`metalcast policy list --markdown`"
    )


def test_the_tables_name_every_rule_once() -> None:
    text = markdown(policy.load(None))
    for rule in (*RULES, *BASE_RULES):
        assert text.count(f"| `{rule.name}` |") == 1, rule.name


def test_the_sample_is_every_default_commented_out(tmp_path: Path) -> None:
    text = sample()
    assert oslo.parse_file_contents(text) == {}
    uncommented = "\n".join(
        line[1:] if line.startswith('#"') else line for line in text.splitlines()
    )
    rules = oslo.parse_file_contents(uncommented)
    assert rules == {rule.name: rule.check for rule in (*BASE_RULES, *RULES)}
    # and it loads as a policy file
    path = tmp_path / "policy.yaml"
    path.write_text(uncommented)
    policy.load(path)


@pytest.mark.parametrize("command", ["list", "markdown", "sample"])
def test_python_m_prints(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command]) == 0
    out = capsys.readouterr().out
    assert "baremetal:node:get" in out


def test_python_m_refuses_a_broken_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text('"baremetal:node:get": [')
    assert main(["list", str(path)]) == 1
    assert "is not valid YAML or JSON" in capsys.readouterr().err
    assert main(["bogus"]) == 2


# ------------------------------------------- the table in docs/ == the expected one

#: how the "Lets in" column names scopes -> the matrix's persona prefixes
_SCOPES = {
    "system": ("system",),
    "any project's": ("owner", "lessee", "other"),
    "owner and lessee project": ("owner", "lessee"),
    "owner project": ("owner",),
    "allocation owner project": ("owner",),
    "runbook owner project": ("owner",),
    "lessee project": ("lessee",),
    "any other project": ("other",),
}
_ROW = re.compile(r"^\| `([^`]+)` \| .* \| (.*) \|$")


def personas_named(text: str) -> frozenset[str]:
    """The matrix's personas a "Lets in" cell names (``system admin, member; owner
    project reader``)."""
    if text == "anyone, even without credentials":
        return NAMES
    if text == "anyone with valid credentials":
        return NAMES - {"anonymous"}
    if text.startswith("nobody"):
        return frozenset()
    named: set[str] = set()
    for part in text.split("; "):
        scope = next(s for s in sorted(_SCOPES, key=len, reverse=True) if part.startswith(f"{s} "))
        roles = part.removeprefix(f"{scope} ").split(", ")
        named |= {f"{who} {role}" for who in _SCOPES[scope] for role in roles}
    return frozenset(named) & NAMES


def documented() -> dict[str, str]:
    """Rule -> its "Lets in" cell, as docs/policy.md says."""
    found = GENERATED.search(DOC.read_text())
    assert found
    rows = (_ROW.match(line) for line in found.group(1).splitlines())
    return {row.group(1): row.group(2) for row in rows if row and row.group(1) in EXPECTED}


def reachable(name: str) -> frozenset[str]:
    """``EXPECTED[name]`` as callers meet it: without credentials only public paths
    are reached at all (401 everywhere else, whatever the rule)."""
    rule = next(r for r in RULES if r.name == name)
    if all(path in PUBLIC_PATHS for _, path in rule.operations):
        return EXPECTED[name]
    return EXPECTED[name] - {"anonymous"}


def test_the_table_in_docs_lets_in_whom_the_persona_matrix_expects() -> None:
    cells = documented()
    assert set(cells) == set(EXPECTED), "rules missing from docs/policy.md"
    wrong = []
    for name, cell in cells.items():
        if name in EXPECTED_ON_OTHERS_TOKEN:
            anyones, _, own = cell.partition(" (anyone's); ")
            said = {"anyone's": personas_named(anyones)}
            said["own"] = said["anyone's"] | personas_named(own.removesuffix(" (their own)"))
            want = {"anyone's": EXPECTED_ON_OTHERS_TOKEN[name], "own": reachable(name)}
        else:
            said, want = {"": personas_named(cell)}, {"": reachable(name)}
        if said != want:
            wrong.append(f"{name}: docs say {cell!r}; the matrix expects {want}")
    assert not wrong, "\n".join(wrong)
