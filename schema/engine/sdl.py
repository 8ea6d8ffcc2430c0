"""A role set's schema as SDL: what a client of that role may send, checked in under clients/schema/.

The HTTP schema of a role set (RoleSchema, from the SchemaRegistry) holds Query, Mutation and Subscription (the
subscriptions themselves run over the websocket). Clients keep one document per role variant and check it
against these files (a document valid for one role may not validate for another).

Regenerate every file with `python server.py export-schema --all --out clients/schema` (schema/export.py holds
the command: this module is machinery and does not import the domain's root types).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphql import print_schema

from policies.access import ANONYMOUS, AUTHENTICATED
from policies.roles import BUILTIN_ROLES
from policies.store import PolicyStore, read_default_policy
from schema.engine.builder import RoleSchema

REGENERATE = "python server.py export-schema --all --out clients/schema"

# File name -> role set: each built-in role as its holders get it (logged in), the anonymous view before
# login, and a logged-in account with no role (or one whose roles are withheld until a password change).
ROLE_SETS: dict[str, frozenset[str]] = {
    ANONYMOUS: frozenset({ANONYMOUS}),
    AUTHENTICATED: frozenset({AUTHENTICATED}),
    **{key: frozenset({AUTHENTICATED, key}) for key, _name, _scope in BUILTIN_ROLES},
}


def role_sdl(http: RoleSchema, roles: Iterable[str]) -> str:
    """The SDL of one role set (Subscription included: the HTTP schema holds it for introspection), with a header
    naming the role set and the command that regenerates it."""
    header = f"# Role set: {', '.join(sorted(roles))}. Generated; regenerate with: {REGENERATE}\n\n"
    return header + print_schema(http._schema) + "\n"


def role_set_sdl(registry: Any, roles: frozenset[str]) -> str:
    """A running app's SDL for a role set (`registry`: its SchemaRegistry, as `services.registry` holds it)."""
    return role_sdl(registry.for_roles(roles), roles)


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
