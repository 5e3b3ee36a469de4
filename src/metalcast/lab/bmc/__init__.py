"""Virtual BMCs: IPMI (:mod:`.ipmi`) and Redfish (:mod:`.redfish`) in front of lab
machines, and fleets of them in one process (:mod:`.fleet`)."""
