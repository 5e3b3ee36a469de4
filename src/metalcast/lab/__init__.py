"""metalcast.lab."""
