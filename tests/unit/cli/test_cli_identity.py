"""``metalcast user/project/role/token/whoami`` against the real API app (builtin).

The CLI's HTTP client reaches the ASGI app in-process through :class:`AppTransport`;
the credentials it sends are the ones a user exports.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import structlog
from cli_fake_api import Invocation
from typer.testing import CliRunner

from metalcast.api.app import create_app
from metalcast.cli.main import app as cli_app
from metalcast.cli.session import Session
from metalcast.config import ApiSettings, Settings
from metalcast.db import identity, passwords
from metalcast.db.engine import Database

BASE = "http://metalcast.test"
ADMIN_PASSWORD = "the admin's password"
ALICE_PASSWORD = "alice's long password"
CREDENTIAL_VARS = ("METALCAST_TOKEN", "METALCAST_USERNAME", "METALCAST_PASSWORD")


class AppTransport(httpx.BaseTransport):
    """Sends the CLI's synchronous requests to an ASGI app, one event loop each."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[httpx.Headers] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request.headers)
        body = request.read()

        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
                return await client.request(
                    request.method, str(request.url), headers=request.headers, content=body
                )

        answer = anyio.run(send)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


Run = Callable[..., Invocation]


@pytest.fixture
def state(tmp_path: Path) -> Iterator[tuple[Database, AppTransport]]:
    settings = Settings(state_dir=tmp_path, api=ApiSettings(auth_strategy="builtin"))
    db = Database(settings.database_url)
    db.migrate()
    with db.begin() as conn:
        identity.bootstrap_admin(
            conn, "admin", password_hash=passwords.hash_password(ADMIN_PASSWORD)
        )
    # the identity API never reaches the conductor
    transport = AppTransport(create_app(settings, db, conductor=None))  # type: ignore[arg-type]
    yield db, transport
    db.dispose()


@pytest.fixture
def run(state: tuple[Database, AppTransport]) -> Run:
    """``run(*args, env={...}, input=...)``: ``metalcast --url BASE args``."""
    runner = CliRunner()

    def invoke(
        *args: str, env: dict[str, str] | None = None, input: str | None = None
    ) -> Invocation:
        environment: dict[str, str | None] = dict.fromkeys(CREDENTIAL_VARS)
        environment.update(env or {})
        environment["COLUMNS"] = "200"
        obj = Session(BASE, transport=state[1])
        # the app's access log would land in the CLI's captured stdout
        with structlog.testing.capture_logs():
            result = runner.invoke(
                cli_app, ["--url", BASE, *args], obj=obj, env=environment, input=input
            )
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Invocation(result.exit_code, result.stdout, result.stderr)

    return invoke


AS_ADMIN = {"METALCAST_USERNAME": "admin", "METALCAST_PASSWORD": ADMIN_PASSWORD}
AS_ALICE = {"METALCAST_USERNAME": "alice", "METALCAST_PASSWORD": ALICE_PASSWORD}


def ok(result: Invocation) -> str:
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_without_credentials_the_error_says_what_to_set(run: Run) -> None:
    result = run("whoami")
    assert result.exit_code == 1
    assert "carries no credentials" in result.stderr
    assert "METALCAST_TOKEN" in result.stderr and "METALCAST_PASSWORD" in result.stderr
    wrong = run("whoami", env={**AS_ADMIN, "METALCAST_PASSWORD": "nope"})
    assert "The user name or password is wrong." in wrong.stderr
    assert "METALCAST_TOKEN" not in wrong.stderr


def test_a_user_name_without_a_password_is_not_sent_half(run: Run) -> None:
    result = run("whoami", env={"METALCAST_USERNAME": "admin"})
    assert result.exit_code == 1
    assert "METALCAST_PASSWORD is not set" in result.stderr


def test_a_team_set_up_from_the_cli(run: Run, state: tuple[Database, AppTransport]) -> None:
    ok(run("project", "create", "team-a", "--description", "the A team", env=AS_ADMIN))
    created = json.loads(
        ok(
            run(
                "--json", "user", "create", "alice", "--password-stdin",
                "--default-project", "team-a",
                env=AS_ADMIN, input=ALICE_PASSWORD + "\n",
            )
        )
    )  # fmt: skip
    assert created["default_project_name"] == "team-a"
    assert ALICE_PASSWORD not in json.dumps(created)
    assert "alice is member on project team-a" in ok(
        run("role", "add", "member", "--user", "alice", "--project", "team-a", env=AS_ADMIN)
    )
    listed = ok(run("user", "list", env=AS_ADMIN))
    assert "member on project team-a" in listed and "admin on system" in listed
    assert "team-a" in ok(run("role", "list", "--user", "alice", env=AS_ADMIN))

    me = json.loads(ok(run("--json", "whoami", env=AS_ALICE)))
    assert (me["user_name"], me["project_name"], me["roles"]) == (
        "alice",
        "team-a",
        ["member", "reader"],
    )
    assert "Access was denied" in run("user", "list", env=AS_ALICE).stderr

    # the password went over the wire as HTTP Basic, never anywhere else
    assert any(h.get("authorization", "").startswith("Basic ") for h in state[1].seen)


def test_tokens_from_the_cli(run: Run, state: tuple[Database, AppTransport]) -> None:
    out = ok(run("token", "create", "--expires-in", "600", "--description", "ci", env=AS_ADMIN))
    assert "shown this once only" in out
    secret = out.split("export METALCAST_TOKEN=")[1].split()[0]
    assert secret.startswith("mct_")

    me = json.loads(ok(run("--json", "whoami", env={"METALCAST_TOKEN": secret})))
    assert me["user_name"] == "admin" and me["expires_at"] is not None
    assert state[1].seen[-1]["x-auth-token"] == secret
    assert json.loads(ok(run("--token", secret, "--json", "whoami")))["system"] == "all"

    tokens = json.loads(ok(run("--json", "token", "list", env=AS_ADMIN)))
    assert [t["description"] for t in tokens] == ["ci"]
    assert secret not in json.dumps(tokens)
    ok(run("token", "revoke", tokens[0]["id"], env=AS_ADMIN))
    result = run("whoami", env={"METALCAST_TOKEN": secret})
    assert result.exit_code == 1 and "revoked" in result.stderr


def test_passwords_come_from_a_prompt_or_stdin(run: Run) -> None:
    ok(run("project", "create", "team-a", env=AS_ADMIN))
    prompted = run("user", "create", "alice", env=AS_ADMIN, input=f"{ALICE_PASSWORD}\n" * 2)
    assert ok(prompted) and ALICE_PASSWORD not in prompted.stdout
    ok(run("role", "add", "reader", "--user", "alice", "--project", "team-a", env=AS_ADMIN))
    assert "alice" in ok(run("whoami", env=AS_ALICE))

    new = "another long password"
    ok(run("user", "set", "alice", "--password-stdin", env=AS_ADMIN, input=new + "\n"))
    assert run("whoami", env=AS_ALICE).exit_code == 1
    ok(run("whoami", env={**AS_ALICE, "METALCAST_PASSWORD": new}))

    short = run("user", "create", "bob", "--password-stdin", env=AS_ADMIN, input="short\n")
    assert short.exit_code == 1 and "at least 12 characters" in short.stderr
    empty = run("user", "create", "bob", "--password-stdin", env=AS_ADMIN, input="")
    assert empty.exit_code == 1 and "no password on standard input" in empty.stderr


def test_disable_delete_and_the_refusals(run: Run) -> None:
    ok(run("project", "create", "team-a", env=AS_ADMIN))
    ok(run("user", "create", "alice", "--password-stdin", env=AS_ADMIN, input=ALICE_PASSWORD))
    ok(run("role", "add", "member", "--user", "alice", "--project", "team-a", env=AS_ADMIN))
    ok(run("user", "set", "alice", "--disable", env=AS_ADMIN))
    assert "User alice is disabled." in run("whoami", env=AS_ALICE).stderr
    ok(run("user", "set", "alice", "--enable", env=AS_ADMIN))
    ok(run("project", "set", "team-a", "--disable", env=AS_ADMIN))
    assert "Project team-a is disabled." in run("whoami", env=AS_ALICE).stderr

    nothing = run("user", "set", "alice", env=AS_ADMIN)
    assert nothing.exit_code == 1 and "nothing to change" in nothing.stderr
    nowhere = run("role", "add", "member", "--user", "alice", env=AS_ADMIN)
    assert nowhere.exit_code == 1 and "--project P or --system" in nowhere.stderr

    ok(run("role", "remove", "member", "--user", "alice", "--project", "team-a", env=AS_ADMIN))
    ok(run("user", "delete", "alice", env=AS_ADMIN))
    ok(run("project", "delete", "team-a", env=AS_ADMIN))
    assert "could not be found" in run("project", "show", "team-a", env=AS_ADMIN).stderr
    assert "alice" not in ok(run("user", "list", env=AS_ADMIN))


def test_bootstrap_admin_works_on_the_local_database(tmp_path: Path) -> None:
    runner = CliRunner()
    state_dir = tmp_path / "state"
    args = ["user", "bootstrap-admin", "--state-dir", str(state_dir), "--name", "root"]
    env = {"METALCAST_CONFIG": None, "METALCAST_DATABASE_URL": None}
    given = runner.invoke(
        cli_app, [*args, "--password-stdin"], input="a chosen password\n", env=env
    )
    assert given.exit_code == 0, given.output
    assert "a chosen password" not in given.output and "created" in given.output

    made = runner.invoke(cli_app, args, env=env)
    assert made.exit_code == 0, made.output
    assert "reset" in made.output and "export METALCAST_PASSWORD=" in made.output
    printed = made.output.split("export METALCAST_PASSWORD='")[1].split("'")[0]

    db = Database(f"sqlite:///{state_dir / 'metalcast.sqlite'}")
    with db.read() as conn:
        root = identity.get_user(conn, "root")
        assert identity.roles_of(conn, root.id, project=None) == {"admin"}
    assert passwords.verify_password(root.password_hash, printed)
    assert not passwords.verify_password(root.password_hash, "a chosen password")
    db.dispose()
