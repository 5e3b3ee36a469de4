"""How the API reaches the conductor: one interface, called in-process."""
