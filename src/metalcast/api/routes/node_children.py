"""/v1/nodes/{node}/children (API 1.83): the UUIDs of a node's child nodes.

A child node names its parent in ``parent_node`` (a DPU in a server, a blade in a
chassis node).  As in Ironic: a node the caller may not see is ``404`` rather than
``403``, and a project's caller gets only the children its project owns or leases.
"""

from __future__ import annotations

from starlette.routing import Route

from metalcast.api import lookup
from metalcast.api.endpoint import Call, endpoint
from metalcast.api.operations import LINK, UUID, Operation, array, obj
from metalcast.api.params import check_query
from metalcast.api.versions import allows
from metalcast.db import repository as repo
from metalcast.errors import Forbidden, NotFound

#: ``links`` is one link (not a list), to the node list filtered by the parent, as
#: Ironic answers
CHILDREN = obj({"children": array(UUID), "links": LINK}, required=("children", "links"))


@endpoint(
    "baremetal:node:get",
    doc=Operation("List a node's children", answers={200: CHILDREN}, feature="child_nodes"),
)
def get_children(call: Call) -> object:
    if not allows("child_nodes", call.version):
        raise NotFound("The resource could not be found.")
    check_query(call.query, (), what="a node's children")
    with call.deps.db.read() as conn:
        try:
            node = lookup.node(conn, call, ident=call.args["node"], action=lookup.NODE_GET)
        except Forbidden:
            raise NotFound(f"Node {call.args['node']} could not be found.") from None
        filters = repo.NodeFilters(
            parent_node=node.uuid, include_children=False, project=call.list_scope("node")
        )
        children = repo.list_node_rows(
            conn, filters, page=repo.Page(limit=10_000), columns=("id", "uuid")
        )
    return {
        "children": [child["uuid"] for child in children],
        "links": {
            "href": f"{call.base_url}/v1/nodes?parent_node={node.uuid}",
            "rel": "children",
        },
    }


ROUTES = [Route("/v1/nodes/{node}/children", get_children, methods=["GET"])]
