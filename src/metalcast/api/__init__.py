"""metalcast.api."""
