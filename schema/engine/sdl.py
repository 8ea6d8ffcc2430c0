"""A role set's schema as SDL: what a client of that role may send, checked in under clients/schema/.

The HTTP schema of a role set (RoleSchema, from the SchemaRegistry) holds Query and Mutation; its Subscription
lives in the websocket's schema for the same role set (schema/engine/websocket.py). The SDL joins them: the
Subscription type, and any type only it reaches, are added to the HTTP schema by a schema extension, so the
result is one schema graphql-core has checked whole. Clients keep one document per role variant and check it
against these files (a document valid for one role may not validate for another).

Regenerate every file with `python -m schema.export --all --out clients/schema` (schema/export.py holds the
command: this module is machinery and does not import the domain's root types).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphql import GraphQLSchema, extend_schema, parse, print_schema
from graphql.utilities import print_type

from policies.access import ANONYMOUS, AUTHENTICATED
from policies.roles import BUILTIN_ROLES
from policies.store import PolicyStore, read_default_policy
from schema.engine.builder import RoleSchema

REGENERATE = "python -m schema.export --all --out clients/schema"

# File name -> role set: each built-in role as its holders get it (logged in), the anonymous view before
# login, and a logged-in account with no role (or one whose roles are withheld until a password change).
ROLE_SETS: dict[str, frozenset[str]] = {
    ANONYMOUS: frozenset({ANONYMOUS}),
    AUTHENTICATED: frozenset({AUTHENTICATED}),
    **{key: frozenset({AUTHENTICATED, key}) for key, _name, _scope in BUILTIN_ROLES},
}


def with_subscription(http: GraphQLSchema, socket: GraphQLSchema | None) -> GraphQLSchema:
    """The HTTP schema extended with the socket schema's Subscription type (and the types only it reaches)."""
    subscription = socket.subscription_type if socket is not None else None
    if socket is None or subscription is None:
        return http
    own = [
        named
        for name, named in socket.type_map.items()
        if name not in http.type_map and not name.startswith("__") and named is not subscription
    ]
    extension = "\n\n".join(print_type(named) for named in (subscription, *own))
    return extend_schema(http, parse(f"{extension}\n\nextend schema {{ subscription: {subscription.name} }}"))


def role_sdl(http: RoleSchema, socket: RoleSchema | None, roles: Iterable[str]) -> str:
    """The SDL of one role set, with a header naming it and the command that regenerates it."""
    joined = with_subscription(http._schema, socket._schema if socket is not None else None)
    header = f"# Role set: {', '.join(sorted(roles))}. Generated; regenerate with: {REGENERATE}\n\n"
    return header + print_schema(joined) + "\n"


def role_set_sdl(registry: Any, socket_schemas: Any, roles: frozenset[str]) -> str:
    """A running app's SDL for a role set: `registry` its SchemaRegistry, `socket_schemas` its SocketSchemas
    (schema/engine/websocket.py), both as `services.registry` and `services.socket_schemas` hold them."""
    return role_sdl(registry.for_roles(roles), socket_schemas.for_roles(roles), roles)


def default_policy() -> PolicyStore:
    """The policy a new installation starts with (policies/default_policy.csv), loaded without a database:
    what `server.py migrate` seeds, so the same schemas as a fresh server's."""
    store = PolicyStore(db=None)  # type: ignore[arg-type]  # never loads: the lines are added here
    for line in read_default_policy():
        if line.ptype == "p":
            store.enforcer.add_policy(*line.values)
        elif line.ptype == "g":
            store.enforcer.add_grouping_policy(*line.values)
    return store
