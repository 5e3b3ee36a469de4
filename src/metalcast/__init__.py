"""metalcast: bare-metal provisioning with an Ironic-compatible API."""

__version__ = "0.1.0"
