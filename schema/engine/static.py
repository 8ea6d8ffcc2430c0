"""Documents whose answer the schema alone fixes: a query selecting only `__typename` at its root.

`{ __typename }` is what clients (and balancers, and the benchmark's Q0) send to see that the API answers with their
token: its data is the name of the schema's query type, the same every time. Running it through strawberry and
graphql-core costs more than everything else in the request (the extension hooks, an execution context, the
field's completion), so once a document of that shape has been run the normal way for a role schema, without an
error, its data is kept for that schema (rebuilt, so emptied, when the policy changes) and later requests get it
without running it again.

Nothing is skipped that could refuse or record: the endpoint has already verified the token, the session and the
rate limits; the document was validated (depth, aliases, tokens, introspection switch) on its first run, and the
same text and operation name with the same schema validate the same way; such a query reads nothing, so it has no
cost, no resolver, no audit row and no refusal to record. The request is still counted in the request figures.
"""

from __future__ import annotations

import re
import weakref
from typing import Any

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType, parse

from core.lru import LRU

TYPENAME = "__typename"
MAX_TEXT = 1000  # longer documents are never looked at (a client's ping is a few characters)
ENTRIES = 64  # distinct texts kept per role schema (including the ones found not to be static)

# role schema -> ((text, operation name) -> (data or None,)); the tuple keeps a known "not static" apart from a miss
_answers: weakref.WeakKeyDictionary[Any, LRU[tuple[str, str | None], tuple[dict[str, str] | None]]] = (
    weakref.WeakKeyDictionary()
)


# The shape of such a document in text (a first filter: what matches is still parsed and checked once). Clients
# such as Apollo add `__typename` to every selection, so the word alone would send every console document through here.
_SHAPE = re.compile(
    r"\s*(?:query\b\s*(?:[_A-Za-z]\w*)?\s*)?"  # `query` and a name, or nothing
    r"\{(?:[\s,]*(?:[_A-Za-z]\w*\s*:\s*)?__typename\b)+[\s,]*\}\s*"  # `__typename`, maybe aliased, once or more
)


def _candidate(query: str | None) -> bool:
    return query is not None and len(query) <= MAX_TEXT and TYPENAME in query and _SHAPE.fullmatch(query) is not None


def static_data(query: str, operation_name: str | None, root_type: str) -> dict[str, str] | None:
    """The data of `query` when it is one query operation selecting only `__typename` (aliases allowed) at its
    root, without variables, directives, arguments or fragments; else None."""
    try:
        document = parse(query, no_location=True)
    except GraphQLError:
        return None
    if len(document.definitions) != 1:
        return None
    operation = document.definitions[0]
    if not isinstance(operation, OperationDefinitionNode) or operation.operation is not OperationType.QUERY:
        return None
    if operation.variable_definitions or operation.directives:
        return None
    if operation_name is not None and (operation.name is None or operation.name.value != operation_name):
        return None
    data: dict[str, str] = {}
    for selection in operation.selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.name.value != TYPENAME:
            return None
        if selection.arguments or selection.directives or selection.selection_set is not None:
            return None
        data[(selection.alias or selection.name).value] = root_type
    return data or None


def known(schema: Any, query: str | None, operation_name: str | None) -> dict[str, str] | None:
    """The kept data of this document for this role schema, if it was run before and is static."""
    if not _candidate(query):
        return None
    cache = _answers.get(schema)
    if cache is None:
        return None
    entry = cache.get((query, operation_name))  # type: ignore[arg-type]
    return None if entry is None else entry[0]


def learn(schema: Any, query: str | None, operation_name: str | None, result: Any) -> None:
    """After a normal run without errors: keep whether the document is static (and its data, checked equal)."""
    if not _candidate(query) or result.errors:
        return
    assert query is not None
    cache = _answers.get(schema)
    if cache is None:
        cache = _answers[schema] = LRU(ENTRIES)
    key = (query, operation_name)
    if cache.get(key) is not None:
        return
    root = schema._schema.query_type
    data = static_data(query, operation_name, root.name) if root is not None else None
    if data is not None and result.data != data:  # what graphql-core answered is the reference
        data = None
    cache.put(key, (data,))
