"""Inventory files: parsing, per-row checks, BMC key mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from metalcast.enrolment_rows import (
    BMC_KEYS,
    InventoryError,
    NodeSpec,
    RawRow,
    Rejected,
    RowError,
    check_rows,
    driver_info_of,
    parse_csv,
    parse_macs,
    parse_row,
    parse_yaml,
    read_rows,
    redfish_address,
)

HEADER = "name,driver,bmc_address,bmc_username,bmc_password,mac,cpus,memory,disk,cpu_arch\n"


def row(**values: object) -> RawRow:
    base: dict[str, object] = {"name": "n1", "driver": "ipmi", "bmc_address": "10.0.0.1"}
    base.update(values)
    return RawRow(2, {k: v for k, v in base.items() if v is not None})


def test_csv_rows_are_numbered_by_line_with_the_header_as_line_1() -> None:
    text = HEADER + "a,ipmi,10.0.0.1,u,p,aa:bb:cc:dd:ee:01,4,8192,100,x86_64\n\nb,ipmi,10.0.0.2\n"
    rows = parse_csv(text)
    assert [r.number for r in rows] == [2, 4]
    assert rows[0].values["memory_mb"] == "8192"
    assert rows[0].values["local_gb"] == "100"
    assert "mac" not in rows[1].values


def test_csv_rejects_unknown_columns_before_any_row() -> None:
    with pytest.raises(InventoryError, match=r"unknown column.*colour"):
        parse_csv("name,driver,colour\nx,ipmi,red\n")


def test_yaml_rows_are_numbered_from_one_and_accept_mac_lists() -> None:
    rows = parse_yaml(
        "- name: a\n  driver: redfish\n  bmc_address: 10.0.0.1\n  mac: [AA:BB:CC:DD:EE:01]\n"
        "- name: b\n  driver: ipmi\n  bmc_address: 10.0.0.2\n  Memory: 1024\n"
    )
    assert [r.number for r in rows] == [1, 2]
    assert rows[1].values["memory_mb"] == 1024
    assert parse_row(rows[0]).macs == ("aa:bb:cc:dd:ee:01",)


def test_yaml_must_be_a_list() -> None:
    with pytest.raises(InventoryError, match="list of nodes"):
        parse_yaml("name: a\n")


def test_read_rows_picks_the_format_by_extension(tmp_path: Path) -> None:
    path = tmp_path / "nodes.txt"
    path.write_text(HEADER)
    with pytest.raises(InventoryError, match=r"use a \.csv"):
        read_rows(path)
    csv_path = tmp_path / "nodes.csv"
    csv_path.write_text(HEADER + "a,ipmi,10.0.0.1\n")
    assert read_rows(csv_path)[0].values["name"] == "a"


def test_read_rows_refuses_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "nodes.csv"
    path.write_text(HEADER)
    with pytest.raises(InventoryError, match="no rows"):
        read_rows(path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("AA:BB:CC:DD:EE:01", ("aa:bb:cc:dd:ee:01",)),
        ("aa-bb-cc-dd-ee-01; aa:bb:cc:dd:ee:02", ("aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02")),
        ("aa:bb:cc:dd:ee:01 aa:bb:cc:dd:ee:02", ("aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02")),
        (["aa:bb:cc:dd:ee:03"], ("aa:bb:cc:dd:ee:03",)),
    ],
)
def test_macs_are_split_and_normalised(value: object, expected: tuple[str, ...]) -> None:
    assert parse_macs(value) == expected


@pytest.mark.parametrize("bad", ["zz:zz", "aa:bb:cc:dd:ee", "aa:bb-cc:dd:ee:ff", "aabbccddeeff"])
def test_invalid_macs_are_named(bad: str) -> None:
    with pytest.raises(RowError, match=f"mac '{bad}' is not a valid MAC address"):
        parse_macs(bad)


def test_a_mac_listed_twice_in_a_row_is_refused() -> None:
    with pytest.raises(RowError, match="listed twice"):
        parse_macs("aa:bb:cc:dd:ee:01;AA:BB:CC:DD:EE:01")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"name": None}, "missing name"),
        ({"driver": None, "bmc_address": None}, "missing driver, bmc_address"),
        ({"cpus": "four"}, "cpus 'four' is not a whole number"),
        ({"memory_mb": "-1"}, "memory_mb -1 must be at least 0"),
        ({"cpus": True}, "cpus True is not a whole number"),
        ({"bmc_port": "70000"}, "bmc_port 70000 must be between 1 and 65535"),
        ({"driver": "ilo"}, "driver 'ilo' is not one of"),
        ({"colour": "red"}, "unknown field"),
    ],
)
def test_row_errors_say_what_is_wrong(values: dict[str, object], message: str) -> None:
    with pytest.raises(RowError, match=message):
        parse_row(row(**values))


def test_ipmi_row_maps_bmc_keys_and_properties() -> None:
    spec = parse_row(
        row(
            bmc_username="admin",
            bmc_password="secret",
            bmc_port="623",
            cpus="8",
            memory_mb="16384",
            local_gb="200",
            cpu_arch="x86_64",
            resource_class="baremetal",
            mac="aa:bb:cc:dd:ee:01",
        )
    )
    assert spec.driver_info == {
        "ipmi_address": "10.0.0.1",
        "ipmi_username": "admin",
        "ipmi_password": "secret",
        "ipmi_port": 623,
    }
    assert spec.properties == {"cpus": 8, "memory_mb": 16384, "local_gb": 200, "cpu_arch": "x86_64"}
    assert spec.body()["resource_class"] == "baremetal"
    assert spec.macs == ("aa:bb:cc:dd:ee:01",)


def test_redfish_row_folds_the_port_into_the_address() -> None:
    info = driver_info_of(
        "redfish", {"bmc_address": "10.0.0.9", "bmc_port": "8443", "bmc_username": "root"}
    )
    assert info == {"redfish_address": "https://10.0.0.9:8443", "redfish_username": "root"}


def test_redfish_address_refuses_two_ports() -> None:
    assert redfish_address("http://h:8000/x", 8000) == "http://h:8000/x"
    assert redfish_address("h", None) == "h"
    with pytest.raises(RowError, match="differs"):
        redfish_address("https://h:443", 8443)


def test_fake_hardware_uses_the_ipmi_keys() -> None:
    assert BMC_KEYS["fake-hardware"] == BMC_KEYS["ipmi"]


def test_check_rows_rejects_later_duplicates_and_keeps_order() -> None:
    rows = [
        RawRow(2, {"name": "a", "driver": "ipmi", "bmc_address": "x", "mac": "aa:bb:cc:dd:ee:01"}),
        RawRow(3, {"name": "b", "driver": "ipmi", "bmc_address": "x", "mac": "zz:zz"}),
        RawRow(4, {"name": "a", "driver": "ipmi", "bmc_address": "x"}),
        RawRow(5, {"name": "c", "driver": "ipmi", "bmc_address": "x", "mac": "AA:BB:CC:DD:EE:01"}),
        RawRow(6, {"name": "d", "driver": "ipmi", "bmc_address": "x"}),
    ]
    checked = check_rows(rows)
    assert isinstance(checked[0], NodeSpec)
    assert checked[1] == Rejected(3, "b", "mac 'zz:zz' is not a valid MAC address")
    assert checked[2] == Rejected(4, "a", "name 'a' is already used by row 2")
    assert checked[3] == Rejected(5, "c", "mac 'aa:bb:cc:dd:ee:01' is already used by row 2")
    assert isinstance(checked[4], NodeSpec)
