"""The one error a ramdisk or disk-image build raises."""

from __future__ import annotations

from metalcast.errors import MetalcastError


class RamdiskError(MetalcastError):
    """A build step failed: the message names the step, what the tool said, and a hint."""
