"""metalcast.lab: virtual machines and the virtual BMCs that drive them.

:mod:`metalcast.lab.machine` holds what a BMC powers and boots (a simulated machine,
or a QEMU process in :mod:`metalcast.lab.qemu`); :mod:`metalcast.lab.bmc` serves
those machines over real IPMI and Redfish on loopback.
"""
