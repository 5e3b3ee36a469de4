"""SHA-512 crypt through the system's libcrypt: the specification's example, random
salts, and what the ramdisk's agent accepts."""

from __future__ import annotations

import re

import pytest

from metalcast.secrecy import shadow

#: "Hello world!" with salt "saltstring": the example of Drepper's SHA-crypt
#: specification (the same line OpenSSL's ``openssl passwd -6`` prints)
EXAMPLE = (
    "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiB"
    "FdcbYEdFCoEOfaS35inz1"
)


def test_the_specifications_example() -> None:
    assert shadow.sha512_crypt("Hello world!", salt="saltstring") == EXAMPLE
    assert shadow.verify("Hello world!", EXAMPLE)
    assert not shadow.verify("Hello world", EXAMPLE)


def test_a_random_16_character_salt_each_time() -> None:
    first, second = shadow.sha512_crypt("s3cret"), shadow.sha512_crypt("s3cret")

    assert first != second
    for hashed in (first, second):
        assert re.fullmatch(r"\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}", hashed)
        assert shadow.verify("s3cret", hashed)
        assert "s3cret" not in hashed


def test_the_agent_accepts_exactly_what_the_conductor_makes() -> None:
    from metalcast_agent import rescue

    assert rescue._SHA512_CRYPT.pattern == shadow.SHA512_CRYPT.pattern
    assert shadow.SHA512_CRYPT.match(shadow.sha512_crypt("ünïcode ☃ and spaces"))


@pytest.mark.parametrize("salt", ["", "x" * 17, "bad$salt", "sp ace"])
def test_a_bad_salt_is_refused(salt: str) -> None:
    with pytest.raises(ValueError, match="salt"):
        shadow.sha512_crypt("pw", salt=salt)


def test_a_nul_character_is_refused_not_truncated() -> None:
    with pytest.raises(ValueError, match="NUL"):
        shadow.sha512_crypt("pass\0word")
    assert not shadow.verify("pass\0word", shadow.sha512_crypt("pass"))
