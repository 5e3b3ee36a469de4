"""How the API reaches a conductor: one interface (:mod:`.client`), called in-process
(:mod:`.local`, the all-in-one server) or over sealed JSON-RPC (:mod:`.remote` in API
processes, :mod:`.server` in conductor processes)."""
