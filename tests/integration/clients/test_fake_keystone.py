"""The fake Keystone of the conformance run (tests/support/fake_keystone.py) as real
clients see it: keystoneauth1 logs in, openstacksdk finds metalcast in its catalog."""

from __future__ import annotations

import openstack
import pytest
from fake_keystone import running_keystone
from keystoneauth1 import session
from keystoneauth1.identity import v3

pytestmark = pytest.mark.integration


def test_openstacksdk_reaches_metalcast_through_the_catalog(metalcast_url: str) -> None:
    with running_keystone(baremetal_url=metalcast_url) as keystone:
        conn = openstack.connect(
            auth_url=keystone.url,
            username="tempest-admin",
            password="anything",
            project_name="admin",
            user_domain_name="Default",
            project_domain_name="Default",
            region_name="RegionOne",
            load_yaml_config=False,
            load_envvars=False,
        )
        node = conn.baremetal.create_node(driver="fake-hardware", name="via-catalog")
        assert [n.id for n in conn.baremetal.nodes()] == [node.id]
        assert conn.session.get_endpoint(service_type="baremetal") == metalcast_url


def test_a_system_scoped_token_has_every_role() -> None:
    with running_keystone(baremetal_url="http://127.0.0.1:9") as keystone:
        auth = v3.Password(
            auth_url=keystone.url,
            username="tempest-sysadmin",
            password="anything",
            user_domain_name="Default",
            system_scope="all",
        )
        access = auth.get_access(session.Session())
        assert access.system_scoped
        assert sorted(access.role_names) == ["admin", "member", "reader"]
        assert keystone.url.startswith("http://127.0.0.1:")
