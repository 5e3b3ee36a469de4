"""metalcast.agent."""
