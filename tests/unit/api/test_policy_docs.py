"""docs/policy.md and the sample policy file say what the code does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from oslo_policy import policy as oslo

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
