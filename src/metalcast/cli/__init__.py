"""metalcast.cli."""
