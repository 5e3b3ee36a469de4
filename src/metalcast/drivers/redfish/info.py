"""The ``driver_info`` of Redfish nodes, with Ironic's key names."""

from __future__ import annotations

import enum
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

SYSTEMS_PATH = "/redfish/v1/Systems"


class AuthType(enum.StrEnum):
    AUTO = "auto"  # a session if the BMC offers them, else HTTP basic
    BASIC = "basic"
    SESSION = "session"


class RedfishInfo(BaseModel):
    """How to reach a node's Redfish service and its ComputerSystem."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    redfish_address: str = Field(
        min_length=1,
        description="URL of the Redfish service (scheme and host, optionally a port); "
        "https is assumed without a scheme.",
    )
    redfish_system_id: str | None = Field(
        None,
        description="Path of the ComputerSystem (/redfish/v1/Systems/1) or its Id; "
        "may be left out when the service has exactly one system.",
    )
    redfish_username: str | None = Field(None, description="Redfish user name.")
    redfish_password: SecretStr | None = Field(None, description="Redfish password.")
    redfish_verify_ca: bool | str = Field(
        True,
        description="Verify the BMC's TLS certificate: true, false, or the path of a "
        "CA bundle file or directory.",
    )
    redfish_auth_type: AuthType = Field(
        AuthType.AUTO, description="Authentication: auto, basic or session."
    )

    @field_validator("redfish_address")
    @classmethod
    def _address(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if "://" not in value:
            value = f"https://{value}"
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) address: {value!r}")
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("redfish_system_id")
    @classmethod
    def _system(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        return value if value.startswith("/") else f"{SYSTEMS_PATH}/{value}"

    @field_validator("redfish_verify_ca", mode="before")
    @classmethod
    def _verify(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in {"true", "yes", "1", "on"}:
            return True
        if isinstance(value, str) and value.strip().lower() in {"false", "no", "0", "off"}:
            return False
        return value

    @field_validator("redfish_auth_type", mode="before")
    @classmethod
    def _auth(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value
