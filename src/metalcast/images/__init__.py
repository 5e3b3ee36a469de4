"""metalcast.images."""
