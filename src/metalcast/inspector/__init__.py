"""metalcast.inspector."""
