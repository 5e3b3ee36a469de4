"""The IPMI 2.0 cipher suites metalcast speaks, and how messages name a BMC's choice.

A cipher suite (IPMI v2.0 table 22-20) is an authentication (RAKP), an integrity and
a confidentiality algorithm, each a number from tables 13-17 to 13-19.  An RMCP+
Open Session Request proposes the three; the BMC's response carries the ones it
chose.  metalcast speaks suite 17 (SHA-256) and suite 3 (SHA-1), as pyghmi does.
This module imports no protocol library.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CipherSuite:
    number: int
    auth: int  # RAKP-HMAC-SHA1 1, RAKP-HMAC-SHA256 3
    integrity: int  # HMAC-SHA1-96 1, HMAC-SHA256-128 4
    confidentiality: int  # AES-CBC-128 1

    @property
    def algorithms(self) -> tuple[int, int, int]:
        """(authentication, integrity, confidentiality), as an Open Session message has them."""
        return (self.auth, self.integrity, self.confidentiality)


#: best first: without ``ipmi_cipher_suite``, metalcast proposes them in this order
SUITES: tuple[CipherSuite, ...] = (
    CipherSuite(17, auth=3, integrity=4, confidentiality=1),
    CipherSuite(3, auth=1, integrity=1, confidentiality=1),
)
SUITE_NUMBERS: tuple[int, ...] = tuple(s.number for s in SUITES)
#: "3, 17", for messages
SUPPORTED_TEXT = ", ".join(str(n) for n in sorted(SUITE_NUMBERS))


def suite_numbered(number: int) -> CipherSuite:
    """The suite ``number``.  Raises KeyError if metalcast does not speak it."""
    for suite in SUITES:
        if suite.number == number:
            return suite
    raise KeyError(number)


def suite_with(algorithms: tuple[int, int, int]) -> CipherSuite | None:
    """The suite of exactly these algorithms, if metalcast speaks it."""
    return next((s for s in SUITES if s.algorithms == algorithms), None)


def describe(algorithms: tuple[int, int, int]) -> str:
    """The suite's name ("cipher suite 3"), or the algorithm numbers of another combination."""
    suite = suite_with(algorithms)
    if suite is not None:
        return f"cipher suite {suite.number}"
    auth, integrity, confidentiality = algorithms
    return (
        f"algorithms metalcast does not speak (authentication {auth}, integrity "
        f"{integrity}, confidentiality {confidentiality})"
    )
