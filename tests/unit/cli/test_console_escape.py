"""``metalcast node console``'s escape: ``~.`` at the start of a line leaves."""

from __future__ import annotations

from metalcast.cli.console import EscapeReader


def test_tilde_dot_at_the_start_leaves() -> None:
    assert EscapeReader().feed(b"~.") == (b"", True)


def test_tilde_dot_after_a_newline_leaves_and_sends_what_came_before() -> None:
    assert EscapeReader().feed(b"ls\r~.rest") == (b"ls\r", True)


def test_tilde_inside_a_line_is_typed() -> None:
    assert EscapeReader().feed(b"cd ~.") == (b"cd ~.", False)


def test_double_tilde_types_one_and_other_keys_keep_the_tilde() -> None:
    keys = EscapeReader()
    assert keys.feed(b"~~") == (b"~", False)
    keys = EscapeReader()
    assert keys.feed(b"~") == (b"", False)  # held until the next key
    assert keys.feed(b"x") == (b"~x", False)
