"""metalcast.drivers.fake."""
