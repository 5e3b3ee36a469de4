"""How the API reaches the conductor: one interface, in-process or over JSON-RPC."""
