"""metalcast.conductor."""
