"""``metalcast policy``: the rules in force, the docs' tables, a sample policy file."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from metalcast.api.policy import load
from metalcast.api.policy.docs import markdown
from metalcast.cli.main import app


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_sample_prints_every_rule_commented_out() -> None:
    code, out, _ = invoke("policy", "sample")
    assert code == 0
    assert '#"baremetal:node:get": "rule:system_reader or rule:project_reader' in out


def test_list_markdown_prints_the_docs_tables() -> None:
    code, out, _ = invoke("policy", "list", "--markdown")
    assert code == 0
    assert out == markdown(load(None))


def test_list_shows_the_policy_file_in_force(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text('"baremetal:node:get": "rule:system_admin"\n')
    code, out, _ = invoke("policy", "list", env={"METALCAST_API__POLICY_FILE": str(path)})
    assert code == 0
    assert "baremetal:node:get: rule:system_admin\n" in out
    assert "baremetal:node:list: rule:api_reader\n" in out


def test_list_refuses_a_missing_policy_file(tmp_path: Path) -> None:
    code, _, err = invoke("policy", "list", "--policy-file", str(tmp_path / "nope.yaml"))
    assert code == 1
    assert "does not exist" in err
