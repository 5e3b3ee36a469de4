"""The ``driver_info`` of IPMI nodes, with Ironic's key names."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

#: cipher suites pyghmi speaks: 17 (SHA-256, preferred) and 3 (SHA-1)
CIPHER_SUITES: frozenset[int] = frozenset({3, 17})


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
        description="Required cipher suite, 3 or 17. metalcast negotiates 17, else 3; "
        "with 17 here, a BMC that only offers 3 is refused.",
    )
    ipmi_priv_level: PrivilegeLevel = Field(
        PrivilegeLevel.ADMINISTRATOR,
        description="Privilege level: ADMINISTRATOR, OPERATOR, USER or CALLBACK.",
    )

    @field_validator("ipmi_cipher_suite", mode="before")
    @classmethod
    def _suite(cls, value: Any) -> Any:
        if value in (None, ""):
            return None
        suite = int(value)
        if suite not in CIPHER_SUITES:
            raise ValueError(f"cipher suite {suite} is not supported; use 3 or 17")
        return suite

    @field_validator("ipmi_priv_level", mode="before")
    @classmethod
    def _priv(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("ipmi_address")
    @classmethod
    def _address(cls, value: str) -> str:
        return value.strip().strip("[]")
