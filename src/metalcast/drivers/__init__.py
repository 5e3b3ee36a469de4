"""metalcast.drivers."""
