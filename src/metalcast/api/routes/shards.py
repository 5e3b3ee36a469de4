"""/v1/shards (API 1.82): each shard nodes are in, with its number of nodes.

Shards split nodes between the services that watch them (one nova-compute per
shard); a node's ``shard`` is a free string an administrator sets.  As in Ironic the
list is not paged, counts every node and names the nodes without a shard ``"None"``.
"""

from __future__ import annotations

from starlette.routing import Route

from metalcast.api.endpoint import Call, endpoint
from metalcast.api.operations import Operation, array, integer, obj, string
from metalcast.api.params import check_query
from metalcast.api.versions import allows
from metalcast.db import repository as repo
from metalcast.errors import NotFound

SHARD = obj(
    {
        "name": string(description='The shard; "None" for the nodes without one.'),
        "count": integer(minimum=0, description="How many nodes are in it."),
    },
    required=("name", "count"),
)
SHARDS = obj({"shards": array(SHARD)}, required=("shards",))


@endpoint(
    "baremetal:shards:get",
    doc=Operation("List shards", answers={200: SHARDS}, feature="shards"),
)
def get_shards(call: Call) -> object:
    if not allows("shards", call.version):
        raise NotFound("The API version does not allow shards")
    check_query(call.query, (), what="listing shards")
    with call.deps.db.read() as conn:
        counts = repo.shard_counts(conn)
    return {"shards": [{"name": str(name), "count": count} for name, count in counts]}


ROUTES = [Route("/v1/shards", get_shards, methods=["GET"])]
