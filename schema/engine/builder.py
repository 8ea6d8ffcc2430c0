"""One strawberry schema per role set, shaped by the policy.

A field is in a role set's schema only where the policy lets one of the roles `read` it
(`read_masked` counts: the field is there, its value masked) or, on Mutation, `execute` it.
A type left with no visible field disappears together with every field that returns it, so
introspection, GraphiQL and validation all show exactly what the policy grants.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from functools import lru_cache
from typing import Any

import strawberry
from strawberry.extensions import (
    MaxAliasesLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.name_converter import NameConverter
from strawberry.types.base import StrawberryContainer, StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

from core.settings import Settings
from policies.capabilities import Capability
from policies.decision import FieldDecision, FieldMode
from policies.store import PolicyStore
from schema.engine.completion import Compiler, CompilingExecutor
from schema.engine.descriptions import describe
from schema.engine.inputs import compile_inputs
from schema.engine.limits import check_cost, introspection_rules
from schema.engine.persisted import PreparedDocuments
from schema.engine.ratelimit import check_login_rate
from schema.engine.refusals import record_refused_mutations


def _target_definition(field: StrawberryField) -> StrawberryObjectDefinition | None:
    field_type: Any = field.type
    while isinstance(field_type, StrawberryContainer):
        field_type = field_type.of_type
    definition = getattr(field_type, "__strawberry_definition__", None)
    if isinstance(definition, StrawberryObjectDefinition) and not definition.is_input:
        return definition
    return None


class KnownNames(NameConverter):
    """strawberry's name converter, remembering each name it has turned into camelCase: arguments are
    converted again on every resolver call."""

    def __init__(self) -> None:
        super().__init__(auto_camel_case=True)
        self._names: dict[str, str] = {}

    def apply_naming_config(self, name: str) -> str:
        converted = self._names.get(name)
        if converted is None:
            converted = self._names[name] = super().apply_naming_config(name)
        return converted


class RoleSchema(strawberry.Schema):
    """A schema whose fields are filtered by a decision function over schema coordinates."""

    def __init__(
        self,
        *,
        query: type,
        mutation: type | None,
        decision: FieldDecision,
        roles: frozenset[str],
        subscription: type | None = None,
        extensions: Iterable[Any] = (),
        types: Iterable[type] = (),
        compiled: bool = False,
    ) -> None:
        self.roles = roles
        self.may_introspect = False  # where introspection is switched off for others (settings)
        # compiled completion of object values (schema/engine/completion.py); None: graphql-core's alone
        self.compiler = Compiler() if compiled else None
        self.decision = decision
        self._has_fields: dict[str, bool] = {}
        self._config = StrawberryConfig(auto_camel_case=True, name_converter=KnownNames())
        mutation_visible = mutation is not None and self._any_visible(
            mutation.__strawberry_definition__  # type: ignore[attr-defined]
        )
        # Subscriptions run over the websocket (schema/engine/websocket.py); they are in the HTTP schema too, so
        # introspection, GraphiQL and code generators see what the role may subscribe to.
        subscription_visible = subscription is not None and self._any_visible(
            subscription.__strawberry_definition__  # type: ignore[attr-defined]
        )
        super().__init__(
            query=query,
            mutation=mutation if mutation_visible else None,
            subscription=subscription if subscription_visible else None,
            extensions=tuple(extensions),
            config=self._config,
            types=tuple(types),
            execution_context_class=CompilingExecutor if compiled else None,
        )
        describe(self._schema)  # every type, field, argument and value described (schema/engine/descriptions.py)
        if compiled:
            compile_inputs(self)  # input objects built by converters compiled once (schema/engine/inputs.py)

    # ---- visibility ---------------------------------------------------------------------------

    def _type_name(self, definition: StrawberryObjectDefinition) -> str:
        return self._config.name_converter.from_object(definition)

    def field_mode(self, type_name: str, field_name: str) -> FieldMode:
        """How this schema shows a field: the role set's one field decision (policies/decision.py)."""
        return self.decision.mode(type_name, field_name)

    def _field_mode(self, definition: StrawberryObjectDefinition, field: StrawberryField) -> FieldMode:
        return self.decision.mode(self._type_name(definition), self._config.name_converter.get_graphql_name(field))

    def _any_visible(self, definition: StrawberryObjectDefinition) -> bool:
        name = self._type_name(definition)
        if name in self._has_fields:
            return self._has_fields[name]
        self._has_fields[name] = True  # optimistic while in progress: cycles are allowed
        result = any(self._visible(definition, field) for field in definition.fields)
        self._has_fields[name] = result
        return result

    def _visible(self, definition: StrawberryObjectDefinition, field: StrawberryField) -> bool:
        if self._field_mode(definition, field) is FieldMode.HIDDEN:
            return False
        target = _target_definition(field)
        return target is None or self._any_visible(target)

    def process_errors(self, errors: list[Any], execution_context: Any = None) -> None:
        """Errors are formatted and logged (with the request id) by the HTTP layer, not here."""

    def get_fields(self, type_definition: StrawberryObjectDefinition) -> list[StrawberryField]:
        if type_definition.is_input:
            return type_definition.fields
        return [field for field in type_definition.fields if self._visible(type_definition, field)]


class _Everything(FieldDecision):
    """Every field in clear: the complete schema, whose coordinates policy lines may name."""

    def __init__(self) -> None:
        super().__init__(frozenset())

    def mode(self, type_name: str, field_name: str) -> FieldMode:
        return FieldMode.CLEAR


@lru_cache(maxsize=4)
def full_schema(query: type, mutation: type, subscription: type | None = None) -> RoleSchema:
    """The complete schema (every field in clear), built once per process: what policy lines may name, the
    dictionaries (its enums) and the permission catalogue are read off it."""
    return RoleSchema(
        query=query, mutation=mutation, subscription=subscription, decision=_Everything(), roles=frozenset()
    )


def all_coordinates(
    query: type, mutation: type, types: Iterable[type] = (), subscription: type | None = None
) -> set[str]:
    """Every `Type.field` and `Type.*` of the complete schema: what policy lines may name."""
    full = (
        full_schema(query, mutation, subscription)
        if not types
        else RoleSchema(
            query=query,
            mutation=mutation,
            subscription=subscription,
            decision=_Everything(),
            roles=frozenset(),
            types=types,
        )
    )
    coordinates: set[str] = set()
    for type_name, graphql_type in full._schema.type_map.items():
        if type_name.startswith("__") or not hasattr(graphql_type, "fields"):
            continue
        if getattr(graphql_type, "is_input_type", False) or type(graphql_type).__name__ == "GraphQLInputObjectType":
            continue
        coordinates.add(f"{type_name}.*")
        coordinates.update(f"{type_name}.{field}" for field in graphql_type.fields)
    return coordinates


class DocumentLimits(SchemaExtension):
    """Depth, alias and token limits in one extension whose validation rules are made once per process.

    strawberry's QueryDepthLimiter and MaxAliasesLimiter build a new rule class in every instance, and an
    extension is instantiated for every request; the rules only matter when a document is validated, which
    PreparedDocuments does once per document and schema. Same rules, same errors, made once."""

    def __init__(self, settings: Settings) -> None:
        self.max_tokens = settings.max_tokens
        self.rules = _limit_rules(settings.max_query_depth, settings.max_aliases)

    def on_operation(self) -> Iterator[None]:
        self.limit(self.execution_context)
        yield

    def limit(self, context: Any) -> None:
        """Sets the token limit and adds the depth and alias rules (`context`: strawberry's execution context)."""
        context.parse_options["max_tokens"] = self.max_tokens
        context.validation_rules = (*context.validation_rules, *self.rules)


@lru_cache(maxsize=16)
def _limit_rules(max_depth: int, max_aliases: int) -> tuple[Any, ...]:
    depth = QueryDepthLimiter(max_depth=max_depth)
    aliases = MaxAliasesLimiter(max_alias_count=max_aliases)
    return (*depth.validation_rules, *aliases.validation_rules)


class RequestChecks(DocumentLimits):
    """The checks every HTTP operation passes, in one extension.

    strawberry makes every extension anew for each request and enters each of its hooks through a context
    manager: as six small extensions these cost more than the checks themselves. In order:
    * before parsing: the token limit, and the depth, alias and introspection rules (DocumentLimits's, plus
      the introspection switch of schema/engine/limits.py) for the one validation PreparedDocuments makes;
    * before execution: marks the operation executed (the error formatter tells validation errors from
      execution errors by it), then the cost limit (schema/engine/limits.py), then the login rate limit
      (schema/engine/ratelimit.py); a refusal raises before any resolver runs;
    * after execution: refused mutations that no write unit recorded are recorded (schema/engine/refusals.py).
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.settings = settings

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        self.limit(context)
        may_introspect = bool(getattr(context.schema, "may_introspect", False))
        context.validation_rules = (*context.validation_rules, *introspection_rules(self.settings, may_introspect))
        yield

    async def on_execute(self) -> AsyncIterator[None]:  # type: ignore[override]
        context = self.execution_context
        state = getattr(context.context, "state", None)
        if state is not None:
            state.executed = True
        check_cost(context, self.settings)
        await check_login_rate(context)
        yield
        await record_refused_mutations(context)


def _extensions(settings: Settings) -> list[Any]:
    return [
        # parse and validate through LRU caches; persisted documents once per schema (schema/engine/persisted.py)
        lambda: PreparedDocuments(cache_size=settings.prepared_cache_size, cacheable=settings.cache_document_bytes),
        lambda: RequestChecks(settings),
    ]


class SchemaRegistry:
    """The schema of each distinct role set, built on first use, dropped when the policy changes."""

    def __init__(
        self, *, query: type, mutation: type, policy: PolicyStore, settings: Settings, subscription: type | None = None
    ) -> None:
        self.query = query
        self.mutation = mutation
        self.subscription = subscription
        self.policy = policy
        self.settings = settings
        self._schemas: dict[frozenset[str], RoleSchema] = {}
        self._lock = threading.Lock()
        self.coordinates = all_coordinates(query, mutation, subscription=subscription)
        self.full = full_schema(query, mutation, subscription)
        policy.on_change(self.clear)

    def clear(self) -> None:
        with self._lock:
            self._schemas = {}

    def built_count(self) -> int:
        return len(self._schemas)

    def for_roles(self, roles: frozenset[str]) -> RoleSchema:
        schema = self._schemas.get(roles)
        if schema is None:
            with self._lock:
                schema = self._schemas.get(roles)
                if schema is None:
                    schema = self._build(roles)
                    self._schemas[roles] = schema
        return schema

    def _build(self, roles: frozenset[str]) -> RoleSchema:
        schema = RoleSchema(
            query=self.query,
            mutation=self.mutation,
            subscription=self.subscription,
            decision=self.policy.decision(roles),
            roles=roles,
            extensions=_extensions(self.settings),
            compiled=self.settings.compiled_completion,
        )
        schema.may_introspect = Capability.SCHEMA_INTROSPECT in self.policy.capabilities(roles)
        return schema
