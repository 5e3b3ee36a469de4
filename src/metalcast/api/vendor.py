"""Vendor passthru requests, on a node or on a hardware type: which method, and its
arguments.  The method is named in the path (``.../vendor_passthru/{method}``, as
python-ironicclient sends it) or the query (``?method=``, as Ironic documents it);
the arguments are the JSON body, an object (none: ``{}``).

Errors: ``InvalidInput`` (400) for a missing method or arguments that are not an
object.
"""

from __future__ import annotations

from typing import Any

from metalcast.api.endpoint import Call
from metalcast.api.operations import ANY, Named, Operation, Param, obj, string
from metalcast.errors import InvalidInput

METHODS = Named(
    "VendorMethods",
    obj(
        additional=obj(additional=True),
        description="Method name -> its description (async, attach, description, http_methods).",
    ),
)
PASSTHRU = Operation(
    "Call a vendor passthru method",
    answers={200: ANY, 202: ANY},
    body=obj(additional=True, description="The method's arguments."),
    body_required=False,
    query=(Param("method", string(), "The method (when the path does not name it)."),),
    description="The method's HTTP methods say which of GET, POST, PUT, PATCH, DELETE it "
    "takes; an asynchronous one answers 202.",
)


def passthru_request(call: Call) -> tuple[str, dict[str, Any]]:
    """The vendor method a request names and the arguments it passes.

    Raises:
        InvalidInput: no method named, or arguments that are not a JSON object.
    """
    method = call.args.get("method") or call.query.get("method")
    if not method:
        raise InvalidInput("Method not specified: add ?method=<name> to the URL.")
    args = call.body if call.body is not None else {}
    if not isinstance(args, dict):
        raise InvalidInput("The arguments of a vendor method must be a JSON object.")
    return method, args
