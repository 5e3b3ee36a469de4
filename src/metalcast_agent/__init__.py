"""metalcast-agent: the program that runs inside the deploy ramdisk.

It only makes outbound HTTP calls to metalcast (``/v1/lookup`` then ``/v1/heartbeat``),
runs the commands the conductor hands out in its heartbeat answers, and uses nothing but
the Python standard library, so the ramdisk can ship a bare ``python3`` with this
package copied into its stdlib directory. The contract is ``docs/agent-protocol.md``.
"""

from __future__ import annotations

__version__ = "0.1.0"

#: what the agent sends as ``agent_version`` in every heartbeat
AGENT_VERSION = f"metalcast-agent {__version__}"
