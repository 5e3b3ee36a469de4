"""Version discovery, microversion negotiation and the headers every response carries."""

from __future__ import annotations

import pytest
from api_harness import Api, fault_of

from metalcast.api import versions
from metalcast.api.versions import MAX_VERSION, MIN_VERSION, Version
from metalcast.errors import InvalidInput, NotAcceptable


def test_root_lists_v1_with_the_served_range(api: Api) -> None:
    response = api.get("/", version=None)
    assert response.status_code == 200
    body = response.json()
    assert body["default_version"] == body["versions"][0]
    v1 = body["default_version"]
    assert v1["id"] == "v1"
    assert v1["min_version"] == "1.1"
    assert v1["version"] == str(MAX_VERSION)
    assert v1["status"] == "CURRENT"
    assert v1["links"] == [{"href": "http://testserver/v1/", "rel": "self"}]


def test_v1_lists_resources_and_media_types(api: Api) -> None:
    body = api.get("/v1").json()
    assert body["id"] == "v1"
    assert body["media_types"] == [
        {"base": "application/json", "type": "application/vnd.openstack.ironic.v1+json"}
    ]
    for name in ("nodes", "ports", "portgroups", "chassis", "drivers", "conductors"):
        assert body[name][0] == {"href": f"http://testserver/v1/{name}/", "rel": "self"}
    assert body["version"]["version"] == str(MAX_VERSION)


def test_every_response_carries_version_and_request_id_headers(api: Api) -> None:
    response = api.get("/v1/nodes", version="1.20")
    headers = response.headers
    assert headers["X-OpenStack-Ironic-API-Minimum-Version"] == "1.1"
    assert headers["X-OpenStack-Ironic-API-Maximum-Version"] == str(MAX_VERSION)
    assert headers["X-OpenStack-Ironic-API-Version"] == "1.20"
    assert headers["OpenStack-API-Version"] == "baremetal 1.20"
    assert "X-OpenStack-Ironic-API-Version" in headers["Vary"]
    assert headers["X-OpenStack-Request-Id"].startswith("req-")


def test_no_header_means_the_minimum_version(api: Api) -> None:
    response = api.get("/v1/nodes", version=None)
    assert response.headers["X-OpenStack-Ironic-API-Version"] == "1.1"


def test_latest_means_the_maximum_version(api: Api) -> None:
    response = api.get("/v1/nodes", version="latest")
    assert response.headers["X-OpenStack-Ironic-API-Version"] == str(MAX_VERSION)


def test_generic_header_is_understood(api: Api) -> None:
    response = api.get(
        "/v1/nodes", version=None, headers={"OpenStack-API-Version": "compute 2.1, baremetal 1.9"}
    )
    assert response.headers["X-OpenStack-Ironic-API-Version"] == "1.9"


@pytest.mark.parametrize("asked", ["1.0", "1.999", "2.1"])
def test_version_outside_the_range_is_406_with_the_range(api: Api, asked: str) -> None:
    response = api.get("/v1/nodes", version=asked)
    assert response.status_code == 406
    assert fault_of(response) == (
        f"Version {asked} was requested but the minor version is not supported by this "
        f"service. The supported version range is: [1.1, {MAX_VERSION}]."
    )
    # clients negotiate from these headers
    assert response.headers["X-OpenStack-Ironic-API-Maximum-Version"] == str(MAX_VERSION)
    assert response.headers["X-OpenStack-Ironic-API-Minimum-Version"] == "1.1"


def test_malformed_version_is_400(api: Api) -> None:
    response = api.get("/v1/nodes", version="one.two")
    assert response.status_code == 400
    assert "one.two" in fault_of(response)


def test_root_ignores_a_bad_version(api: Api) -> None:
    assert api.get("/", version="9.9").status_code == 200


def test_unknown_path_and_wrong_method_use_ironic_error_body(api: Api) -> None:
    response = api.get("/v1/bogus")
    assert response.status_code == 404
    assert fault_of(response) == "The resource could not be found."
    response = api.request("POST", "/v1/drivers")
    assert response.status_code == 405
    assert fault_of(response)
    assert response.headers["X-OpenStack-Ironic-API-Maximum-Version"] == str(MAX_VERSION)


def test_trailing_slash_is_the_same_resource(api: Api) -> None:
    assert api.get("/v1/nodes/").status_code == 200


# ------------------------------------------------------------------ the module itself


def test_negotiate_parses_and_bounds() -> None:
    assert versions.negotiate({}) == MIN_VERSION
    assert versions.negotiate({"x-openstack-ironic-api-version": "1.5"}) == Version(1, 5)
    assert versions.negotiate({"x-openstack-ironic-api-version": " LATEST "}) == MAX_VERSION
    with pytest.raises(NotAcceptable):
        versions.negotiate({"x-openstack-ironic-api-version": "1.116"})
    with pytest.raises(InvalidInput):
        versions.negotiate({"x-openstack-ironic-api-version": "1"})


def test_features_above_1_81_follow_ironic() -> None:
    assert not versions.allows("firmware_interface", Version(1, 85))
    assert versions.allows("firmware_interface", Version(1, 86))
    assert not versions.shows("shards", Version(1, 81))
    assert versions.shows("shards", Version(1, 82))
    assert not versions.shows("history_states", Version(1, 114))
    assert versions.shows("history_states", MAX_VERSION)


def test_features_up_to_max_follow_ironic() -> None:
    assert not versions.allows("soft_power", Version(1, 26))
    assert versions.allows("soft_power", Version(1, 27))
    assert not versions.shows("node_name", Version(1, 4))
    assert versions.shows("node_name", Version(1, 5))
    assert not versions.allows("history", Version(1, 77))
    assert versions.allows("history", Version(1, 78))
    assert not versions.shows("retired", Version(1, 60))
    assert versions.shows("retired", Version(1, 61))


def test_max_version_is_ironic_39s() -> None:
    # every version up to 1.115 is served or left out for a reason docs/api-compat.md
    # gives; no feature is newer than the maximum
    assert str(MAX_VERSION) == "1.115"
    assert max(versions.FEATURES.values()) <= MAX_VERSION


def test_features_of_1_52_to_1_60_are_gated_as_in_ironic() -> None:
    assert not versions.allows("is_smartnic", Version(1, 52))
    assert versions.allows("is_smartnic", Version(1, 53))
    assert not versions.allows("configdrive_vendor_data", Version(1, 58))
    assert not versions.shows("allocation_owner", Version(1, 59))
    assert versions.shows("allocation_owner", Version(1, 60))


@pytest.mark.parametrize(
    ("feature", "version"),
    [
        ("raid", 12),
        ("volume", 32),
        ("rebuild_configdrive", 35),
        ("traits", 37),
        ("rescue", 38),
        ("inspect_wait", 39),
        ("bios", 40),
        ("abort_inspect", 41),
        ("reset_interfaces", 45),
        ("conductors", 49),
        ("description", 51),
    ],
)
def test_features_below_max_follow_ironic(feature: str, version: int) -> None:
    assert versions.FEATURES[feature] == Version(1, version)
    assert not versions.allows(feature, Version(1, version - 1))
    assert versions.allows(feature, Version(1, version))


def test_paths_without_the_version_are_v1_paths_as_in_ironic(api: Api) -> None:
    node = api.node(name="n1")
    bookmark = next(link["href"] for link in node["links"] if link["rel"] == "bookmark")
    assert bookmark == f"http://testserver/nodes/{node['uuid']}"
    shown = api.get(bookmark.removeprefix("http://testserver"))
    assert shown.status_code == 200
    assert shown.json()["uuid"] == node["uuid"]
    assert api.get("/nodes/n1/states").status_code == 200
    assert api.get("/").json()["default_version"]["id"] == "v1"  # the root stays the root
    assert api.get("/nothing-here").status_code == 404
