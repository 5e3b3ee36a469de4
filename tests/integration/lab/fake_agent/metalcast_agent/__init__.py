"""A stand-in for metalcast-agent: one lookup, report it, exit with status 3."""
