"""Only system administrators name local files (or internal hosts) for a node to
fetch; /images is no longer served by the API."""

from __future__ import annotations

from typing import Any

import pytest
from api_harness import Api, fault_of

from metalcast.db import repository as repo

SHA256 = "ab" * 32
LOCAL = "only system administrators may give a local file"
INTERNAL = "may not reach loopback, link-local or unspecified addresses"


def owned(secured: Api, **fields: Any) -> str:
    uuid: str = secured.node(owner="p1", **fields)["uuid"]
    return uuid


def set_info(api: Api, uuid: str, key: str, value: object) -> Any:
    return api.patch(
        f"/v1/nodes/{uuid}", [{"op": "add", "path": f"/instance_info/{key}", "value": value}]
    )


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("image_source", "file:///var/lib/metalcast/secret.key", LOCAL),
        ("image_source", "FILE:///var/lib/metalcast/metalcast.sqlite", LOCAL),
        ("image_source", "/var/lib/metalcast/secret.key", LOCAL),
        ("image_checksum", "file:///var/lib/metalcast/secret.key", LOCAL),
        ("image_os_hash_value", "/etc/shadow", LOCAL),
        ("image_source", "http://127.0.0.1:6385/v1/nodes", INTERNAL),
        ("image_source", "http://localhost/x.raw", INTERNAL),
        ("image_source", "http://169.254.169.254/latest/meta-data/", INTERNAL),
        ("image_source", "http://[::1]:8080/images/cache/x.raw", INTERNAL),
        ("image_checksum", "http://0.0.0.0:6385/SHA256SUMS", INTERNAL),
        ("configdrive", "http://127.0.0.1:9/drive.iso", INTERNAL),
    ],
)
def test_a_member_may_not_name_local_files_or_internal_hosts(
    secured: Api, key: str, value: str, why: str
) -> None:
    uuid = owned(secured)
    member = secured.as_("member", "p1")

    response = set_info(member, uuid, key, value)

    assert response.status_code == 403, response.text
    message = fault_of(response)
    assert message.startswith(f"instance_info/{key}: ") and why in message
    assert secured.as_("admin").get(f"/v1/nodes/{uuid}").json()["instance_info"] == {}


def test_a_member_may_name_remote_images(secured: Api) -> None:
    uuid = owned(secured)
    member = secured.as_("member", "p1")
    assert set_info(member, uuid, "image_source", "https://images.example/x.raw").status_code == 200
    assert set_info(member, uuid, "image_checksum", SHA256).status_code == 200


def test_an_administrator_may_name_local_files(secured: Api) -> None:
    uuid = owned(secured)
    admin = secured.as_("admin")
    assert set_info(admin, uuid, "image_source", "file:///srv/images/x.raw").status_code == 200
    assert set_info(admin, uuid, "image_checksum", "/srv/images/SHA256SUMS").status_code == 200


def test_a_member_may_not_reuse_an_administrators_local_image(secured: Api) -> None:
    uuid = owned(secured)
    set_info(secured.as_("admin"), uuid, "image_source", "file:///srv/images/x.raw")
    member = secured.as_("member", "p1")

    # other keys are the member's to change; the image stays the administrator's
    assert set_info(member, uuid, "root_gb", 10).status_code == 200
    # but the image is not: a new checksum would make the local file the member's
    response = set_info(member, uuid, "image_checksum", SHA256)
    assert response.status_code == 403
    assert fault_of(response).startswith(f"instance_info/image_source: {LOCAL} ")


def test_a_member_may_not_deploy_with_an_internal_config_drive_url(secured: Api) -> None:
    uuid = owned(secured)
    with secured.db.begin() as conn:
        repo.update_node(conn, repo.get_node(conn, uuid).id, {"provision_state": "available"})
    member = secured.as_("member", "p1")

    response = member.put(
        f"/v1/nodes/{uuid}/states/provision",
        {"target": "active", "configdrive": "http://169.254.169.254/latest/user-data"},
    )

    assert response.status_code == 403
    message = fault_of(response)
    assert message.startswith("configdrive: 169.254.169.254 is a link-local address: ")
    assert INTERNAL in message
    assert secured.as_("admin").get(f"/v1/nodes/{uuid}").json()["provision_state"] == "available"


def test_the_api_serves_no_images(api: Api, secured: Api) -> None:
    for path in ("/images/cache/0123456789abcdef0123456789abcdef.raw", "/images/configdrive/x"):
        gone = api.get(path)
        assert gone.status_code == 404
        assert fault_of(gone) == "The resource could not be found."
        anonymous = secured.get(path, headers={})
        assert anonymous.status_code == 401  # not a public path either
