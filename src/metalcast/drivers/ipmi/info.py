"""The ``driver_info`` of IPMI nodes, with Ironic's key names."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from metalcast.drivers.ipmi.cipher_suites import SUITE_NUMBERS, SUPPORTED_TEXT


class PrivilegeLevel(enum.StrEnum):
    CALLBACK = "CALLBACK"
    USER = "USER"
    OPERATOR = "OPERATOR"
    ADMINISTRATOR = "ADMINISTRATOR"

    @property
    def code(self) -> int:
        """The IPMI privilege level number."""
        return {"CALLBACK": 1, "USER": 2, "OPERATOR": 3, "ADMINISTRATOR": 4}[self.value]


class IpmiInfo(BaseModel):
    """How to reach a node's BMC over IPMI 2.0 (lanplus)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    ipmi_address: str = Field(min_length=1, description="IP address or hostname of the BMC.")
    ipmi_port: int = Field(623, ge=1, le=65535, description="UDP port of the BMC.")
    ipmi_username: str = Field("", description="BMC user name; empty for the anonymous user.")
    ipmi_password: SecretStr = Field(SecretStr(""), description="BMC password.")
    ipmi_cipher_suite: int | None = Field(
        None,
        description="Cipher suite to log in with, 3 or 17: the only one proposed. "
        "Unset: 17, then 3 if the BMC refuses 17.",
    )
    ipmi_priv_level: PrivilegeLevel = Field(
        PrivilegeLevel.ADMINISTRATOR,
        description="Privilege level: ADMINISTRATOR, OPERATOR, USER or CALLBACK.",
    )

    @field_validator("ipmi_cipher_suite", mode="before")
    @classmethod
    def _suite(cls, value: Any) -> Any:
        return parse_cipher_suite(value)

    @field_validator("ipmi_priv_level", mode="before")
    @classmethod
    def _priv(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("ipmi_address")
    @classmethod
    def _address(cls, value: str) -> str:
        return value.strip().strip("[]")


def parse_cipher_suite(value: object) -> int | None:
    """``ipmi_cipher_suite`` as Ironic's clients send it: a number, or its digits.

    Raises:
        ValueError: not a cipher suite number, or one metalcast does not speak.
    """
    if value is None or value == "":
        return None
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.isascii() and text.isdigit():
        number = int(text)
    elif isinstance(text, int) and not isinstance(text, bool):
        number = text
    else:
        raise ValueError(
            f"{value!r} is not a cipher suite number; supported cipher suites: {SUPPORTED_TEXT}"
        )
    if number not in SUITE_NUMBERS:
        raise ValueError(
            f"cipher suite {number} is not supported; supported cipher suites: {SUPPORTED_TEXT}"
        )
    return number
