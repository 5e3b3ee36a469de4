"""The root error and the errors that cross layers.

Each layer draws its own tree in its module docstring; the ones here are raised in
one layer and rendered by another (the API turns ``status_code`` into the response)::

    MetalcastError                    500 unless a subclass says otherwise
    ├── InvalidInput                  400 the request is wrong; the message says how
    ├── NotFound                      404
    ├── Conflict                      409 duplicate name/MAC/UUID, node busy
    │   └── NodeLocked                409 another task holds the node's lock
    ├── NotAcceptable                 406 API microversion outside the served range
    ├── Unauthorized                  401 no valid credentials for a protected resource
    ├── RequestTooLarge               413 the request body is over the configured limit
    ├── Forbidden                     403 policy refused the request
    │   └── NodeProtected             403 undeploy, rebuild or delete of a protected node
    ├── NoFreeWorker                  503 every conductor worker is busy
    ├── ServiceUnavailable            503 shutting down, no conductor alive
    └── DriverError                   driver failures (see metalcast.drivers.base)
        ├── RetryableDriverError      transient: the conductor may retry
        └── FatalDriverError          retrying will not help
"""

from __future__ import annotations


class MetalcastError(Exception):
    """Root of every error metalcast raises on purpose."""

    status_code: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(MetalcastError):
    """The request is malformed or asks for something impossible."""

    status_code = 400


class NotFound(MetalcastError):
    """The named resource does not exist (or the caller may not see it)."""

    status_code = 404


class Conflict(MetalcastError):
    """The request conflicts with the current state of a resource."""

    status_code = 409


class NodeLocked(Conflict):
    """Another task holds the node's exclusive lock."""

    def __init__(self, node: str, holder: str) -> None:
        super().__init__(
            f"Node {node} is locked by host {holder}, please retry after the current "
            "operation is completed."
        )
        self.node = node
        self.holder = holder


class NotAcceptable(MetalcastError):
    """The requested API microversion is not served."""

    status_code = 406


class Unauthorized(MetalcastError):
    """The request carries no valid credentials, or wrong ones.

    ``challenge`` is the ``WWW-Authenticate`` header the response carries.
    """

    status_code = 401

    def __init__(self, message: str, *, challenge: str = 'Basic realm="metalcast"') -> None:
        super().__init__(message)
        self.challenge = challenge


class RequestTooLarge(MetalcastError):
    """The request body is larger than the API accepts."""

    status_code = 413


class Forbidden(MetalcastError):
    """Policy does not allow the caller to do this."""

    status_code = 403


class NodeProtected(Forbidden):
    """The node is protected: it may not be undeployed, rebuilt or deleted (Ironic
    answers 403 too)."""

    def __init__(self, node: str) -> None:
        super().__init__(
            f"Node {node} is protected and cannot be undeployed, rebuilt or deleted; "
            "unset 'protected' first."
        )
        self.node = node


class NoFreeWorker(MetalcastError):
    """Every conductor worker is busy; the caller should retry later."""

    status_code = 503

    def __init__(self) -> None:
        super().__init__(
            "Requested action cannot be performed due to lack of free conductor workers."
        )


class ServiceUnavailable(MetalcastError):
    """The service cannot take this request now (shutting down, no conductor)."""

    status_code = 503


class DriverError(MetalcastError):
    """A hardware interface failed.  ``operation`` names what was attempted."""

    def __init__(self, message: str, *, operation: str = "") -> None:
        super().__init__(message)
        self.operation = operation


class RetryableDriverError(DriverError):
    """A transient failure (timeout, packet loss): the same call may succeed."""


class FatalDriverError(DriverError):
    """A failure that retrying will not fix (bad credentials, unsupported)."""
