"""Acting on a node: states, power, provision, maintenance, validate, management,
traits, VIFs, history and vendor passthru."""

from __future__ import annotations

import pytest
from api_harness import Api, fault_of

from metalcast.api.schema import MAX_TRAITS


def wait_for(api: Api, ident: str, state: str) -> None:
    """Let the conductor's workers finish, then check the node reached ``state``."""
    assert api.service.rt.workers.wait_idle(10)
    states = api.get(f"/v1/nodes/{ident}/states").json()
    assert (states["provision_state"], states["target_provision_state"]) == (state, None)


def test_states_document(api: Api) -> None:
    api.node(name="s")
    states = api.get("/v1/nodes/s/states").json()
    assert set(states) >= {
        "console_enabled",
        "last_error",
        "power_state",
        "provision_state",
        "provision_updated_at",
        "target_power_state",
        "target_provision_state",
    }


def test_provision_walks_the_state_machine(api: Api) -> None:
    node = api.node(name="p")
    response = api.put("/v1/nodes/p/states/provision", {"target": "manage"})
    assert response.status_code == 202
    assert response.headers["Location"] == f"http://testserver/v1/nodes/{node['uuid']}/states"
    assert response.content == b""
    wait_for(api, "p", "manageable")
    assert api.put("/v1/nodes/p/states/provision", {"target": "provide"}).status_code == 202
    wait_for(api, "p", "available")
    assert api.put("/v1/nodes/p/states/provision", {"target": "active"}).status_code == 202
    wait_for(api, "p", "active")
    history = api.get("/v1/nodes/p/history").json()["history"]
    assert any("available → deploying" in event["event"] for event in history)


def test_impossible_transition_is_400(api: Api) -> None:
    api.node(name="p")
    response = api.put("/v1/nodes/p/states/provision", {"target": "active"})
    assert response.status_code == 400
    assert "enroll" in fault_of(response)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"target": "explode"}, "could not be understood"),
        ({}, "'target' is a required property"),
        ({"target": "clean"}, '"clean_steps" is required'),
        ({"target": "manage", "clean_steps": [{"step": "x"}]}, "only valid"),
        ({"target": "manage", "configdrive": "abc"}, "only valid"),
        ({"target": "rescue"}, '"rescue_password" is required'),
        ({"target": "manage", "surprise": 1}, "surprise"),
        ({"target": "active", "configdrive": 12}, "configdrive"),
    ],
)
def test_provision_request_validation(api: Api, body: dict[str, object], expected: str) -> None:
    api.node(name="p")
    response = api.put("/v1/nodes/p/states/provision", body)
    assert response.status_code == 400
    assert expected in fault_of(response)


def test_verbs_follow_their_microversion(api: Api) -> None:
    api.node(name="p")
    response = api.put("/v1/nodes/p/states/provision", {"target": "manage"}, version="1.3")
    assert response.status_code == 406
    # rescue (1.38) is below the maximum: it follows Ironic
    rescue = {"target": "rescue", "rescue_password": "pw"}
    assert api.put("/v1/nodes/p/states/provision", rescue, version="1.37").status_code == 406
    response = api.put("/v1/nodes/p/states/provision", rescue, version="1.38")
    assert response.status_code == 400  # refused by the state machine, not the version
    assert "enroll" in fault_of(response)
    # deploy and undeploy (1.73) follow Ironic too now
    for verb in ("deploy", "undeploy"):
        body = {"target": verb}
        assert api.put("/v1/nodes/p/states/provision", body, version="1.72").status_code == 406
        response = api.put("/v1/nodes/p/states/provision", body, version="1.73")
        assert response.status_code == 400
        assert "enroll" in fault_of(response)
    # service: Ironic 1.87
    service = {"target": "service", "service_steps": [{"interface": "deploy", "step": "x"}]}
    assert api.put("/v1/nodes/p/states/provision", service, version="1.86").status_code == 406
    response = api.put("/v1/nodes/p/states/provision", service, version="1.87")
    assert response.status_code == 400
    assert "enroll" in fault_of(response)


def test_power(api: Api) -> None:
    node = api.node(name="p")
    response = api.put("/v1/nodes/p/states/power", {"target": "power on"})
    assert response.status_code == 202
    assert response.headers["Location"].endswith(f"/v1/nodes/{node['uuid']}/states")
    assert api.service.rt.workers.wait_idle(10)
    assert api.get("/v1/nodes/p/states").json()["power_state"] == "power on"
    response = api.put("/v1/nodes/p/states/power", {"target": "soft power off", "timeout": 5})
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("body", "version", "status"),
    [
        ({"target": "off"}, "1.31", 400),
        ({"target": "power on", "timeout": 0}, "1.31", 400),
        ({"target": "power on", "timeout": "soon"}, "1.31", 400),
        ({"target": "soft power off"}, "1.26", 406),
        ({"target": "power on", "timeout": 5}, "1.26", 406),
    ],
)
def test_power_validation(api: Api, body: dict[str, object], version: str, status: int) -> None:
    api.node(name="p")
    assert api.put("/v1/nodes/p/states/power", body, version=version).status_code == status


def test_power_of_a_node_its_power_interface_cannot_reach_is_400(api: Api) -> None:
    """As Ironic: the power interface validates driver_info before the 202."""
    admin = {"X-Roles": "admin", "OpenStack-System-Scope": "all"}
    assert api.post("/v1/nodes", {"driver": "ipmi", "name": "i"}, headers=admin).status_code == 201
    response = api.put("/v1/nodes/i/states/power", {"target": "power on"})
    assert response.status_code == 400
    assert "ipmi_address" in fault_of(response)
    states = api.get("/v1/nodes/i/states").json()
    assert (states["target_power_state"], states["last_error"]) == (None, None)
    node = api.get("/v1/nodes/i").json()
    assert node["reservation"] is None


def test_maintenance(api: Api) -> None:
    api.node(name="m")
    assert api.put("/v1/nodes/m/maintenance", {"reason": "fan"}).status_code == 202
    node = api.get("/v1/nodes/m").json()
    assert (node["maintenance"], node["maintenance_reason"]) == (True, "fan")
    assert api.delete("/v1/nodes/m/maintenance").status_code == 202
    assert api.get("/v1/nodes/m").json()["maintenance"] is False
    assert api.put("/v1/nodes/m/maintenance").status_code == 202
    assert api.put("/v1/nodes/m/maintenance", {"reason": 3}).status_code == 400


def test_validate(api: Api) -> None:
    api.node(name="v")
    result = api.get("/v1/nodes/v/validate").json()
    assert result["power"] == {"result": True, "reason": None}
    assert set(result) >= {"boot", "deploy", "management", "power"}


def test_boot_device(api: Api) -> None:
    api.node(name="b")
    # a string and a boolean before anything was set, as Ironic's fake management
    # answers (ironic-tempest-plugin's test_get_node_boot_device checks the types)
    assert api.get("/v1/nodes/b/management/boot_device").json() == {
        "boot_device": "pxe",
        "persistent": False,
    }
    supported = api.get("/v1/nodes/b/management/boot_device/supported").json()
    assert "pxe" in supported["supported_boot_devices"]
    response = api.put(
        "/v1/nodes/b/management/boot_device", {"boot_device": "pxe", "persistent": True}
    )
    assert response.status_code == 204
    assert api.get("/v1/nodes/b/management/boot_device").json() == {
        "boot_device": "pxe",
        "persistent": True,
    }
    response = api.put("/v1/nodes/b/management/boot_device", {"persistent": True})
    assert response.status_code == 400


def test_inject_nmi(api: Api) -> None:
    api.node(name="n")
    assert api.put("/v1/nodes/n/management/inject_nmi", {}).status_code == 204
    assert api.put("/v1/nodes/n/management/inject_nmi", version="1.28").status_code == 406


# ---------------------------------------------------------------------------- traits


def test_traits(api: Api) -> None:
    api.node(name="t")
    assert (
        api.put("/v1/nodes/t/traits", {"traits": ["CUSTOM_B", "HW_CPU_X86_VMX"]}).status_code == 204
    )
    assert api.put("/v1/nodes/t/traits/CUSTOM_A").status_code == 204
    assert api.get("/v1/nodes/t/traits").json() == {
        "traits": ["CUSTOM_A", "CUSTOM_B", "HW_CPU_X86_VMX"]
    }
    assert api.get("/v1/nodes/t").json()["traits"] == ["CUSTOM_A", "CUSTOM_B", "HW_CPU_X86_VMX"]
    assert api.delete("/v1/nodes/t/traits/CUSTOM_B").status_code == 204
    assert api.delete("/v1/nodes/t/traits/CUSTOM_B").status_code == 404
    assert api.delete("/v1/nodes/t/traits").status_code == 204
    assert api.get("/v1/nodes/t/traits").json() == {"traits": []}


def test_traits_follow_their_microversion(api: Api) -> None:
    api.node(name="t")
    assert api.put("/v1/nodes/t/traits/CUSTOM_A", version="1.37").status_code == 204
    assert api.get("/v1/nodes/t/traits", version="1.37").json() == {"traits": ["CUSTOM_A"]}
    assert "traits" not in api.get("/v1/nodes/t", version="1.36").json()
    assert api.get("/v1/nodes/t", version="1.37").json()["traits"] == ["CUSTOM_A"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        # Ironic below 1.37: a GET asks the node for a field it lacks (406), a PUT
        # finds no method (405), a DELETE no resource (404); ironic-tempest-plugin's
        # TestNodeTraitsMicroversions expects the same
        ("GET", "/v1/nodes/t/traits", 406),
        ("PUT", "/v1/nodes/t/traits", 405),
        ("PUT", "/v1/nodes/t/traits/CUSTOM_B", 405),
        ("DELETE", "/v1/nodes/t/traits", 404),
        ("DELETE", "/v1/nodes/t/traits/CUSTOM_A", 404),
    ],
)
def test_traits_below_1_37_answer_as_ironic(api: Api, method: str, path: str, status: int) -> None:
    api.node(name="t")
    assert api.put("/v1/nodes/t/traits/CUSTOM_A").status_code == 204
    body = {"traits": ["CUSTOM_B"]} if path.endswith("/traits") and method == "PUT" else None
    for version in ("1.36", "1.27"):
        response = api.request(method, path, body, version=version)
        assert response.status_code == status, (version, response.text)
        assert fault_of(response) == (
            f"Node traits need API version 1.37 or later (requested {version})."
        )
    assert api.get("/v1/nodes/t/traits").json() == {"traits": ["CUSTOM_A"]}


@pytest.mark.parametrize("trait", ["lower_case", "CUSTOM_lower", "CUSTOM_", "1ABC", "A" * 256])
def test_invalid_traits(api: Api, trait: str) -> None:
    api.node(name="t")
    assert api.put(f"/v1/nodes/t/traits/{trait}").status_code == 400
    assert api.put("/v1/nodes/t/traits", {"traits": [trait]}).status_code == 400


def test_too_many_traits(api: Api) -> None:
    api.node(name="t")
    traits = [f"CUSTOM_T{i}" for i in range(MAX_TRAITS + 1)]
    response = api.put("/v1/nodes/t/traits", {"traits": traits})
    assert response.status_code == 400
    assert str(MAX_TRAITS) in fault_of(response)
    assert api.put("/v1/nodes/t/traits", {"traits": "CUSTOM_A"}).status_code == 400


# ------------------------------------------------------------------------------ VIFs


def test_vifs(api: Api) -> None:
    node = api.node(name="v", network_interface="fake")  # records VIFs on free ports
    api.post("/v1/ports", {"node_uuid": node["uuid"], "address": "52:54:00:aa:bb:cc"})
    assert api.post("/v1/nodes/v/vifs", {"id": "vif-1"}).status_code == 204
    assert api.get("/v1/nodes/v/vifs").json() == {"vifs": [{"id": "vif-1"}]}
    assert api.post("/v1/nodes/v/vifs", {"id": "vif-1"}).status_code == 409
    assert api.post("/v1/nodes/v/vifs", {"vif": "x"}).status_code == 400
    assert api.delete("/v1/nodes/v/vifs/vif-1").status_code == 204
    assert api.get("/v1/nodes/v/vifs").json() == {"vifs": []}


def test_vifs_on_a_noop_network_need_no_port(api: Api) -> None:
    # Ironic's noop network interface attaches and detaches without a trace: no free
    # port needed, nothing listed, detaching what was never attached is no error
    node = api.node(name="n")
    assert api.get("/v1/nodes/n").json()["network_interface"] == "noop"
    assert api.post("/v1/nodes/n/vifs", {"id": "vif-1"}).status_code == 204
    assert api.post("/v1/nodes/n/vifs", {"id": "vif-2"}).status_code == 204
    assert api.get("/v1/nodes/n/vifs").json() == {"vifs": []}
    assert api.delete("/v1/nodes/n/vifs/vif-1").status_code == 204
    assert api.delete("/v1/nodes/n/vifs/never-attached").status_code == 204
    response = api.post("/v1/nodes/n/vifs", {"vif": "x"})
    assert response.status_code == 400
    # a network interface that records VIFs still needs a free port
    api.patch("/v1/nodes/n", [{"op": "replace", "path": "/network_interface", "value": "fake"}])
    response = api.post("/v1/nodes/n/vifs", {"id": "vif-3"})
    assert response.status_code == 400  # Ironic's NoFreePhysicalPorts
    assert fault_of(response) == (
        f"Unable to attach VIF vif-3, not enough free physical ports on node {node['uuid']}."
    )


def test_vifs_below_1_28_are_not_found(api: Api) -> None:
    # Ironic (and ironic-tempest-plugin's TestNodeVIFsMicroversions): 404 for every
    # method, not 406
    node = api.node(name="v")
    api.post("/v1/ports", {"node_uuid": node["uuid"], "address": "52:54:00:aa:bb:cc"})
    calls = [("GET", "/v1/nodes/v/vifs", None), ("POST", "/v1/nodes/v/vifs", {"id": "vif-1"})]
    calls.append(("DELETE", "/v1/nodes/v/vifs/vif-1", None))
    for method, path, body in calls:
        for version in ("1.27", "1.18"):
            response = api.request(method, path, body, version=version)
            assert response.status_code == 404, (method, version, response.text)
            assert fault_of(response) == (
                f"Node VIFs need API version 1.28 or later (requested {version})."
            )
    assert api.get("/v1/nodes/v/vifs", version="1.28").json() == {"vifs": []}


# --------------------------------------------------------------------------- history


def test_history(api: Api) -> None:
    node = api.node(name="h")
    api.put("/v1/nodes/h/states/power", {"target": "power on"})
    assert api.service.rt.workers.wait_idle(10)
    events = api.get("/v1/nodes/h/history").json()["history"]
    assert len(events) >= 2
    assert set(events[0]) == {"uuid", "created_at", "severity", "event", "links"}
    detailed = api.get("/v1/nodes/h/history?detail=true").json()["history"][0]
    assert set(detailed) >= {"event_type", "conductor", "user"}
    one = api.get(f"/v1/nodes/h/history/{events[0]['uuid']}").json()
    assert one["uuid"] == events[0]["uuid"]
    assert one["conductor"] == "cond-1"
    assert one["links"][0]["href"] == (
        f"http://testserver/v1/nodes/{node['uuid']}/history/{events[0]['uuid']}"
    )
    page = api.get("/v1/nodes/h/history?limit=1").json()
    assert len(page["history"]) == 1
    assert page["next"].endswith(f"limit=1&marker={events[0]['uuid']}")
    assert api.get("/v1/nodes/h/history/00000000-0000-0000-0000-000000000000").status_code == 404


# ------------------------------------------------------------------- vendor passthru


def test_vendor_passthru(api: Api) -> None:
    api.node(name="v")
    methods = api.get("/v1/nodes/v/vendor_passthru/methods").json()
    assert methods["get_state"]["http_methods"] == ["POST"]
    response = api.post("/v1/nodes/v/vendor_passthru?method=get_state", {})
    assert response.status_code == 200
    assert "power_state" in response.json()
    assert api.post("/v1/nodes/v/vendor_passthru/get_state", {}).status_code == 200
    assert api.post("/v1/nodes/v/vendor_passthru?method=nope", {}).status_code == 400
    assert api.post("/v1/nodes/v/vendor_passthru", {}).status_code == 400
    assert api.get("/v1/nodes/v/vendor_passthru?method=get_state").status_code == 400


def test_boot_mode_and_secure_boot_are_read_and_set_through_the_bmc(api: Api) -> None:
    api.node(name="b")
    states = api.get("/v1/nodes/b/states").json()
    assert (states["boot_mode"], states["secure_boot"]) == (None, None)  # never read yet
    assert api.put("/v1/nodes/b/states/provision", {"target": "manage"}).status_code == 202
    wait_for(api, "b", "manageable")
    node = api.get("/v1/nodes/b").json()
    assert (node["boot_mode"], node["secure_boot"]) == ("uefi", False)  # read when managed

    response = api.put("/v1/nodes/b/states/secure_boot", {"target": True})
    assert response.status_code == 202
    assert response.headers["Location"].endswith(f"/v1/nodes/{node['uuid']}/states")
    assert api.service.rt.workers.wait_idle(10)
    assert api.get("/v1/nodes/b/states").json()["secure_boot"] is True

    assert api.put("/v1/nodes/b/states/secure_boot", {"target": "off"}).status_code == 202
    assert api.service.rt.workers.wait_idle(10)
    assert api.put("/v1/nodes/b/states/boot_mode", {"target": "bios"}).status_code == 202
    assert api.service.rt.workers.wait_idle(10)
    states = api.get("/v1/nodes/b/states").json()
    assert (states["boot_mode"], states["secure_boot"], states["last_error"]) == (
        "bios",
        False,
        None,
    )
    events = [e["event"] for e in api.get("/v1/nodes/b/history").json()["history"]]
    assert any(e.startswith("Boot mode uefi → bios") for e in events)

    # secure boot is UEFI's: the BMC refuses it in BIOS mode, and last_error says so
    assert api.put("/v1/nodes/b/states/secure_boot", {"target": True}).status_code == 202
    assert api.service.rt.workers.wait_idle(10)
    states = api.get("/v1/nodes/b/states").json()
    assert states["secure_boot"] is False
    assert "Failed to change secure_boot state to 'True'" in states["last_error"]
    assert "needs UEFI boot mode" in states["last_error"]


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("boot_mode", {"target": "efi"}, "Allowed boot modes are: uefi, bios"),
        ("boot_mode", {}, "'target' is a required property"),
        ("secure_boot", {"target": "maybe"}, "Invalid value for target"),
        ("secure_boot", {"target": None}, "target"),
        ("secure_boot", {"target": 1}, "Allowed secure_boot states are: true, false"),
    ],
)
def test_boot_mode_requests_are_validated(
    api: Api, path: str, body: dict[str, object], expected: str
) -> None:
    api.node(name="b")
    response = api.put(f"/v1/nodes/b/states/{path}", body)
    assert response.status_code == 400
    assert expected in fault_of(response)


def test_boot_mode_is_not_changed_while_the_node_is_worked_on(api: Api) -> None:
    api.node(name="b", driver_info={"fake_wait": ["clean"]})
    assert api.put("/v1/nodes/b/states/provision", {"target": "manage"}).status_code == 202
    wait_for(api, "b", "manageable")
    assert api.put("/v1/nodes/b/states/provision", {"target": "provide"}).status_code == 202
    assert api.service.rt.workers.wait_idle(10)
    assert api.get("/v1/nodes/b/states").json()["provision_state"] == "clean wait"
    response = api.put("/v1/nodes/b/states/boot_mode", {"target": "bios"})
    assert response.status_code == 409
    assert "clean wait" in fault_of(response)


def test_boot_mode_of_a_node_whose_bmc_cannot_change_it_is_400(api: Api) -> None:
    admin = {"X-Roles": "admin", "OpenStack-System-Scope": "all"}
    info = {"ipmi_address": "127.0.0.1"}
    body = {"driver": "ipmi", "name": "i", "driver_info": info}
    assert api.post("/v1/nodes", body, headers=admin).status_code == 201
    response = api.put("/v1/nodes/i/states/boot_mode", {"target": "uefi"})
    assert response.status_code == 400
    assert "cannot change the boot mode" in fault_of(response)
