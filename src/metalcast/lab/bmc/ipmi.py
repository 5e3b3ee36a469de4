"""A virtual IPMI 2.0 BMC (lanplus) on a loopback UDP port, in front of a Machine.

:class:`IpmiBmc` is a ``pyghmi.ipmi.bmc.Bmc`` serving chassis power control and
status, boot options (device, persistence, UEFI flag: IPMI v2.0 boot flags
parameter 5), NMI, the system GUID, sensors through an SDR repository, and
Serial-over-LAN from the machine's serial port when it is given one
(:mod:`metalcast.lab.bmc.sol`).  Any
number of them run in one process: pyghmi serves every BMC socket from one event
loop (see :mod:`metalcast.drivers.ipmi.eventloop`), so handlers never block: they
only read and change the machine.

Injected faults (:class:`~metalcast.lab.machine.Faults`): dropped or swallowed
packets are ignored before any handling; a refused login answers "unauthorized
name" during the RAKP exchange.
"""

from __future__ import annotations

import logging
import time
import uuid as uuidlib
from collections.abc import Collection
from typing import Any

from pyghmi.ipmi import bmc as pyghmi_bmc
from pyghmi.ipmi.private import session as pyghmi_session

from metalcast.drivers.ipmi.eventloop import ensure_event_pump, wake_io_thread
from metalcast.lab.bmc import ipmi_sdr
from metalcast.lab.bmc.rmcp import SUITES, LabSession
from metalcast.lab.bmc.sol import PACKET_BYTES, SerialSource, SolRelay
from metalcast.lab.machine import (
    BootDevice,
    BootMode,
    BootOverride,
    Machine,
    MachineError,
    Power,
    PowerAction,
)

LOG = logging.getLogger(__name__)

#: completion codes (IPMI v2.0 table 5-2)
CC_OK = 0x00
CC_PARAMETER_NOT_SUPPORTED = 0x80
CC_INVALID_COMMAND = 0xC1
#: Activate Payload: "payload already active on another session" / "disabled"
CC_PAYLOAD_ACTIVE = 0x80
CC_PAYLOAD_DISABLED = 0x81
CC_INVALID_DATA = 0xCC
CC_NOT_IN_PRESENT_STATE = 0xD5

#: boot device selector of the boot flags parameter (bits 5:2 of data byte 2)
_DEVICE_CODES: dict[BootDevice, int] = {
    BootDevice.PXE: 0x1,
    BootDevice.DISK: 0x2,
    BootDevice.CDROM: 0x5,
    BootDevice.BIOS: 0x6,
}
_DEVICE_OF_CODE: dict[int, BootDevice] = {
    **{code: device for device, code in _DEVICE_CODES.items()},
    0x3: BootDevice.DISK,  # "safe mode" disk boot
}
#: seconds between taking a socket out of pyghmi's watch list and closing it, so
#: that the I/O thread never selects on a closed socket
DETACH_GRACE = 0.1

_BOOT_FLAGS = 5
_VALID, _PERSISTENT, _EFI = 0x80, 0x40, 0x20


class IpmiBmc(pyghmi_bmc.Bmc):  # type: ignore[misc]
    """A BMC for one machine, answering on ``address``:``port`` (0: any free port)."""

    def __init__(
        self,
        machine: Machine,
        *,
        username: str,
        password: str,
        port: int = 0,
        address: str = "127.0.0.1",
        suites: Collection[int] | None = None,
        serial: SerialSource | None = None,
    ) -> None:
        """``suites``: the cipher suite numbers offered (default: every one in
        :data:`~metalcast.lab.bmc.rmcp.SUITES`); a proposal of another is refused.
        ``serial``: the machine's serial port, served as SOL (none: SOL disabled)."""
        ensure_event_pump()
        super().__init__({username: password}, port=port, address=address)
        # pyghmi routes session packets by this port: make it the bound one.
        self.port = self.serversocket.getsockname()[1]
        self.address = address
        self.machine = machine
        self.uuid = uuidlib.UUID(machine.uuid)
        self.sdr = ipmi_sdr.SensorRepository(machine)
        self.suites = tuple(s for s in SUITES if suites is None or s.number in suites)
        self.relay = None if serial is None else SolRelay(serial, name=machine.name)

    def password_for(self, username: bytes) -> bytes | None:
        """The password of ``username``; None if unknown or logins are refused."""
        if self.machine.faults.refuse_login:
            return None
        password = self.authdata.get(username.decode("utf-8", "replace"))
        return None if password is None else str(password).encode("utf-8")

    # -- chassis --------------------------------------------------------------

    def get_power_state(self) -> str:
        return "on" if self.machine.power() is Power.ON else "off"

    def power_on(self) -> int:
        return self._act(PowerAction.ON)

    def power_off(self) -> int:
        return self._act(PowerAction.OFF)

    def power_shutdown(self) -> int:
        return self._act(PowerAction.SHUTDOWN)

    def power_reset(self) -> int:
        return self._act(PowerAction.RESET)

    def power_cycle(self) -> int:
        return self._act(PowerAction.CYCLE)

    def pulse_diag(self) -> int:
        return self._act(PowerAction.NMI)

    def get_system_guid(self) -> uuidlib.UUID:
        return self.uuid

    def cold_reset(self) -> int:
        return CC_OK

    def _act(self, action: PowerAction) -> int:
        try:
            self.machine.act(action)
        except MachineError:
            LOG.exception("Machine %s could not %s", self.machine.name, action.value)
            return CC_NOT_IN_PRESENT_STATE
        return CC_OK

    # -- boot options -----------------------------------------------------------

    def get_boot_device(self) -> str:
        # pyghmi's base class calls this; answering avoids its UnboundLocalError.
        device = self.machine.boot_override().device
        return "default" if device is None else device.value

    def get_system_boot_options(self, request: dict[str, Any], session: Any) -> None:
        if request["data"][0] & 0x7F != _BOOT_FLAGS:
            session.send_ipmi_response(code=CC_PARAMETER_NOT_SUPPORTED)
            return
        override = self.machine.boot_override()
        flags, device = 0, 0
        if override.device is not None:
            flags = _VALID | (_PERSISTENT if override.persistent else 0)
            flags |= _EFI if override.mode is BootMode.UEFI else 0
            device = _DEVICE_CODES[override.device] << 2
        session.send_ipmi_response(data=[1, _BOOT_FLAGS, flags, device, 0, 0, 0])

    def set_system_boot_options(self, request: dict[str, Any], session: Any) -> None:
        data = request["data"]
        if data[0] & 0x7F != _BOOT_FLAGS:
            # set-in-progress, acknowledgements, timers: accepted and ignored
            session.send_ipmi_response()
            return
        if len(data) < 3:
            session.send_ipmi_response(code=CC_INVALID_DATA)
            return
        override = _override_from_flags(data[1], data[2])
        if override is None:
            session.send_ipmi_response(code=CC_INVALID_DATA)
            return
        self.machine.set_boot_override(override)
        session.send_ipmi_response()

    # -- requests ----------------------------------------------------------------

    def handle_raw_request(self, request: dict[str, Any], session: Any) -> Any:
        netfn, command = request["netfn"], request["command"]
        if self.sdr.handles(netfn, command):
            code, data = self.sdr.answer(netfn, command, request["data"])
            return session.send_ipmi_response(code=code, data=data)
        if (netfn, command) == (0x06, 0x4B):
            return self._payload_instance_info(session)
        if (netfn, command) == (0x0C, 0x22):
            return self._sol_parameter(request["data"], session)
        return super().handle_raw_request(request, session)

    # -- serial over LAN ---------------------------------------------------------

    def activate_payload(self, request: dict[str, Any], session: Any) -> None:
        """Activate Payload (IPMI v2.0 24.1): the SOL payload, instance 1."""
        if self.relay is None:
            session.send_ipmi_response(code=CC_PAYLOAD_DISABLED)
            return
        if not self.relay.activate(session):
            session.send_ipmi_response(code=CC_PAYLOAD_ACTIVE)
            return
        self.sol = session  # pyghmi's Bmc reads these; the relay holds the console
        self.activated = True
        size = [PACKET_BYTES & 0xFF, PACKET_BYTES >> 8]
        port = [self.port & 0xFF, self.port >> 8]
        session.send_ipmi_response(data=[0, 0, 0, 0, *size, *size, *port, 0xFF, 0xFF])

    def deactivate_payload(self, request: dict[str, Any], session: Any) -> None:
        """Deactivate Payload (IPMI v2.0 24.2), from the session holding it or any
        other (``sol deactivate`` frees a payload its client left behind)."""
        if self.relay is None:
            session.send_ipmi_response(code=CC_PAYLOAD_DISABLED)
            return
        if not self.relay.deactivate():
            session.send_ipmi_response(code=CC_PAYLOAD_ACTIVE)
            return
        self.sol, self.activated = None, False
        session.send_ipmi_response()

    def _payload_instance_info(self, session: Any) -> None:
        """Get Payload Instance Info (IPMI v2.0 24.5): who holds the SOL payload."""
        holder = self.relay.holder() if self.relay is not None else None
        owner = bytes(4) if holder is None else bytes(holder.managedsessionid)
        session.send_ipmi_response(data=[*owner, *bytes(8)])

    def _sol_parameter(self, data: list[int], session: Any) -> None:
        """Get SOL Configuration Parameters (IPMI v2.0 26.3), as ipmitool reads them."""
        revision = 0x11
        if not data or len(data) < 2:
            session.send_ipmi_response(code=CC_INVALID_DATA)
            return
        if data[0] & 0x80:  # the revision only
            session.send_ipmi_response(data=[revision])
            return
        values = _sol_parameters(enabled=self.relay is not None, port=self.port)
        value = values.get(data[1])
        if value is None:
            session.send_ipmi_response(code=CC_PARAMETER_NOT_SUPPORTED)
            return
        session.send_ipmi_response(data=[revision, *value])

    def sessionless_data(self, data: bytes, sockaddr: Any) -> None:
        if self.machine.faults.swallow():
            return
        self.handle_sessionless(data, sockaddr)

    def handle_sessionless(self, data: bytes, sockaddr: Any) -> None:
        """A packet outside any session: capabilities, cipher suites, a new session."""
        packet = bytearray(data)
        if _is_open_session_request(packet):
            LabSession(
                self.authdata,
                self.kg,
                sockaddr,
                self.serversocket,
                packet[16:],
                self.uuid,
                bmc=self,
            )
            return
        super().sessionless_data(data, sockaddr)

    def send_cipher_suites(
        self,
        myaddr: int,
        mylun: int,
        clientaddr: int,
        clientlun: int,
        clientseq: int,
        data: bytearray,
        sockaddr: Any,
    ) -> None:
        """Answer Get Channel Cipher Suites with the suites :mod:`.rmcp` speaks."""
        records = bytearray()
        for suite in self.suites:
            records += bytearray([0xC0, suite.number, suite.auth, 0x40 | suite.integrity, 0x80 | 1])
        index = data[22] & 0x3F if len(data) > 22 else 0
        chunk = records[16 * index : 16 * (index + 1)]
        body = bytearray([CC_OK, 1]) + chunk
        reply = _sessionless_reply(
            (myaddr, mylun), (clientaddr, clientlun, clientseq), command=0x54, data=body
        )
        pyghmi_session._io_sendto(self.serversocket, reply, sockaddr)

    def close(self) -> None:
        """Stop answering and release the UDP port."""
        self.stop_sol()
        self.detach()
        wake_io_thread()
        time.sleep(DETACH_GRACE)
        self.serversocket.close()

    def stop_sol(self) -> None:
        """Stop relaying the serial port (and close it)."""
        if self.relay is not None:
            self.relay.stop()

    def detach(self) -> None:
        """Stop answering.  The socket stays open until :meth:`close` (or the caller)
        closes it, once pyghmi's I/O thread no longer watches it."""
        handlers = pyghmi_session.Session.bmc_handlers
        handlers.pop(self.serversocket, None)
        for peer, by_port in list(handlers.items()):
            session = by_port.get(self.port) if isinstance(by_port, dict) else None
            # a client session's ``bmc`` is an address: only this BMC's sessions match
            if getattr(session, "bmc", None) is self:
                del by_port[self.port]
                if not by_port:
                    handlers.pop(peer, None)
        if self.serversocket in pyghmi_session.iosockets:
            pyghmi_session.iosockets.remove(self.serversocket)


def _sol_parameters(*, enabled: bool, port: int) -> dict[int, list[int]]:
    """The SOL configuration parameters by number (IPMI v2.0 table 26-5)."""
    return {
        0: [0],  # set complete
        1: [1 if enabled else 0],
        2: [0x02],  # user privilege suffices; encryption and authentication optional
        3: [0x0C, 0x60],  # accumulate 60 ms, send at 96 characters
        4: [0x07, 0x32],  # 7 retries, 500 ms apart
        5: [0x0A],  # 115200 bit/s, non-volatile
        6: [0x0A],  # and volatile
        7: [0x01],  # the LAN channel
        8: [port & 0xFF, port >> 8],
    }


def _override_from_flags(flags: int, device_bits: int) -> BootOverride | None:
    """The override boot flags bytes 1 and 2 describe; None if the device is unknown."""
    if not flags & _VALID:
        return BootOverride()
    code = (device_bits >> 2) & 0x0F
    mode = BootMode.UEFI if flags & _EFI else BootMode.LEGACY
    if code == 0:
        return BootOverride(device=None, mode=mode)
    device = _DEVICE_OF_CODE.get(code)
    if device is None:
        return None
    return BootOverride(device=device, persistent=bool(flags & _PERSISTENT), mode=mode)


def _is_open_session_request(packet: bytearray) -> bool:
    """An RMCP+ Open Session Request: IPMI 2.0 format, payload type 0x10."""
    return (
        len(packet) >= 22
        and packet[0] == 0x06
        and packet[2:4] == b"\xff\x07"
        and packet[4] == 0x06
        and packet[5] & 0x3F == 0x10
    )


def _checksum(data: bytes | bytearray) -> int:
    return -sum(data) & 0xFF


def _sessionless_reply(
    responder: tuple[int, int], requester: tuple[int, int, int], *, command: int, data: bytearray
) -> bytearray:
    """An IPMI 2.0 sessionless application-response packet (IPMI v2.0 figure 13-4)."""
    myaddr, mylun = responder
    clientaddr, clientlun, clientseq = requester
    header = bytearray([clientaddr, (0x07 << 2) | clientlun])
    header.append(_checksum(header))
    body = bytearray([myaddr, (clientseq << 2) | mylun, command]) + data
    body.append(_checksum(body))
    message = header + body
    rmcp = bytearray(b"\x06\x00\xff\x07\x06\x00") + bytes(8)
    return rmcp + bytearray([len(message) & 0xFF, len(message) >> 8]) + message
