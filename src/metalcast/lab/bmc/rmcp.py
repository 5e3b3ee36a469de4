"""The RMCP+ login of the virtual IPMI BMC: cipher suites 3 and 17, and refusals.

pyghmi's server session speaks only cipher suite 3 and answers every proposal as
if it had been suite 3, which a client proposing suite 17 (pyghmi's own client, for
one) cannot decode.  :class:`LabSession` negotiates properly: it accepts suite 17
(RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128) and suite 3 (the SHA-1 variants),
answers anything else, or a suite its BMC was told not to offer, with "no cipher
suite match", answers an unknown user or a
refused login with "unauthorized name" as a real BMC does, and drops the packets
its machine's :class:`~metalcast.lab.machine.Faults` say to drop.

The key exchange follows the IPMI v2.0 specification, section 13.31 to 13.32.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyghmi.ipmi.private import constants, serversession

from metalcast.drivers.ipmi import cipher_suites

if TYPE_CHECKING:
    from metalcast.lab.bmc.ipmi import IpmiBmc

#: RMCP+ status codes (IPMI v2.0 table 13-15)
UNAUTHORIZED_NAME = 0x0D
INVALID_INTEGRITY_CHECK = 0x0F
NO_CIPHER_SUITE_MATCH = 0x11


@dataclass(frozen=True, slots=True)
class CipherSuite(cipher_suites.CipherSuite):
    """The algorithms of one cipher suite, and how to compute them."""

    digest: Callable[..., Any]
    icv_length: int  # truncated integrity check value length


#: the digest and integrity check length of each suite the lab BMC speaks
_DIGESTS: dict[int, tuple[Callable[..., Any], int]] = {
    17: (hashlib.sha256, 16),
    3: (hashlib.sha1, 12),
}

#: the suites of the drivers' table (:mod:`metalcast.drivers.ipmi.cipher_suites`)
SUITES: tuple[CipherSuite, ...] = tuple(
    CipherSuite(s.number, s.auth, s.integrity, s.confidentiality, *_DIGESTS[s.number])
    for s in cipher_suites.SUITES
)


def suite_for(auth: int, integrity: int, confidentiality: int) -> CipherSuite | None:
    """The suite proposing exactly these algorithms, if the lab BMC speaks it."""
    wanted = (auth, integrity, confidentiality)
    return next((s for s in SUITES if s.algorithms == wanted), None)


def _starts_session(data: bytearray) -> bool:
    """An Open Session Request, or an IPMI message outside any session (ID 0).

    RAKP messages also carry session ID 0, but belong to the session being opened.
    """
    if len(data) < 14:
        return False
    if data[4] == 0x06:  # IPMI 2.0 header: payload type, then the session ID
        payload_type = data[5] & 0x3F
        return payload_type == 0x10 or (payload_type == 0x00 and data[6:10] == bytes(4))
    return data[9:13] == bytes(4)  # IPMI 1.5 header: sequence number, then session ID


def _mac(key: bytes, data: bytes, suite: CipherSuite) -> bytes:
    return hmac.new(key, data, suite.digest).digest()


class LabSession(serversession.ServerSession):  # type: ignore[misc]
    """One client's RMCP+ session with an :class:`~metalcast.lab.bmc.ipmi.IpmiBmc`."""

    bmc: IpmiBmc
    suite: CipherSuite | None = None

    def create_open_session_response(self, request: bytearray) -> bytearray:
        """Answer an Open Session Request: the agreed algorithms, or a refusal."""
        self.clientsessionid = request[4:8]
        self.managedsessionid = os.urandom(4)
        suite = suite_for(request[12], request[20], request[28]) if len(request) >= 32 else None
        if suite is None or suite not in self.bmc.suites:
            return bytearray([request[0], NO_CIPHER_SUITE_MATCH, 0, 0]) + self.clientsessionid
        self.suite = suite
        self.currhashlib = suite.digest
        self.currhashlen = suite.icv_length
        self.privlevel = 4
        algorithms = bytearray()
        for kind, number in enumerate((suite.auth, suite.integrity, suite.confidentiality)):
            algorithms += bytearray([kind, 0, 0, 8, number, 0, 0, 0])
        head = bytearray([request[0], 0, self.privlevel, 0])
        return head + self.clientsessionid + self.managedsessionid + algorithms

    def _got_rakp1(self, data: bytearray) -> None:
        if self.suite is None:
            return
        tag = data[0]
        self.Rm = bytes(data[8:24])
        self.rolem = data[24]
        self.maxpriv = self.rolem & 0b1111
        self.clientpriv = self.maxpriv
        self.username = bytes(data[28 : 28 + data[27]])
        password = self.bmc.password_for(self.username)
        if password is None:
            self._refuse(constants.payload_types["rakp2"], tag, UNAUTHORIZED_NAME)
            return
        self.kuid = password
        self.kg = self.bmc.kg or password
        self.Rc = os.urandom(16)
        self.uuiddata = self.bmc.uuid.bytes
        signed = (
            bytes(self.clientsessionid)
            + bytes(self.managedsessionid)
            + self.Rm
            + self.Rc
            + self.uuiddata
            + self._role_and_name()
        )
        reply = bytearray([tag, 0, 0, 0]) + self.clientsessionid + self.Rc + self.uuiddata
        reply += _mac(self.kuid, signed, self.suite)
        self.send_payload(reply, constants.payload_types["rakp2"], retry=False)

    def _got_rakp3(self, data: bytearray) -> None:
        suite = self.suite
        if suite is None or not hasattr(self, "kuid") or data[1] != 0:
            return
        signed = self.Rc + bytes(self.clientsessionid) + self._role_and_name()
        if not hmac.compare_digest(bytes(data[8:]), _mac(self.kuid, signed, suite)):
            self._refuse(constants.payload_types["rakp4"], data[0], INVALID_INTEGRITY_CHECK)
            return
        self.sik = _mac(self.kg, self.Rm + self.Rc + self._role_and_name(), suite)
        self.k1 = _mac(self.sik, b"\x01" * 20, suite)
        self.k2 = _mac(self.sik, b"\x02" * 20, suite)
        self.aeskey = self.k2[:16]
        self.localsid = struct.unpack("<I", bytes(self.managedsessionid))[0]
        self.ipmicallback = self.handle_client_request
        check = _mac(self.sik, self.Rm + bytes(self.managedsessionid) + self.uuiddata, suite)
        reply = bytearray([data[0], 0, 0, 0]) + self.clientsessionid + check[: suite.icv_length]
        self.send_payload(reply, constants.payload_types["rakp4"], retry=False)
        # From here on every packet is encrypted and signed.
        self.confalgo = "aes"
        self.integrityalgo = suite.integrity
        self.sequencenumber = 1
        self.sessionid = struct.unpack("<I", bytes(self.clientsessionid))[0]

    def _handle_ipmi_packet(self, data: bytearray, sockaddr: Any = None, qent: Any = None) -> Any:
        if self.bmc.machine.faults.swallow():
            return None
        if _starts_session(data):
            # A new client at this session's address: only this session ends.
            # (pyghmi's own handling unroutes the sessions of every BMC with
            # that client, which breaks clients sharing one socket among BMCs.)
            self._unroute(sockaddr)
            self.bmc.handle_sessionless(bytes(data), sockaddr)
            return None
        return super()._handle_ipmi_packet(data, sockaddr=sockaddr, qent=qent)

    def send_payload(
        self,
        payload: Any = (),
        payload_type: Any = None,
        retry: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Send without keeping the packet to retry: a BMC answers, it never retries.

        pyghmi's server sessions send their answers as a client sends requests:
        kept as the payload in flight, which holds back every later packet with
        data until the peer acknowledges it.  Only an SOL packet ever is, so once
        an answer had been sent, the console's next output waited for nothing.
        """
        return super().send_payload(payload, payload_type, retry=False, **kwargs)

    def sessionless_data(self, data: bytes, sockaddr: Any) -> None:
        """A packet routed here that turned out to be sessionless: the BMC's."""
        self.bmc.handle_sessionless(data, sockaddr)

    def _unroute(self, sockaddr: Any) -> None:
        by_port = serversession.ipmisession.Session.bmc_handlers.get(sockaddr)
        if isinstance(by_port, dict) and by_port.get(self.bmc.port) is self:
            del by_port[self.bmc.port]

    def _role_and_name(self) -> bytes:
        return bytes([self.rolem, len(self.username)]) + self.username

    def _refuse(self, payload_type: int, tag: int, status: int) -> None:
        reply = bytearray([tag, status, 0, 0]) + self.clientsessionid
        self.send_payload(reply, payload_type, retry=False)
