"""metalcast.pxe."""
