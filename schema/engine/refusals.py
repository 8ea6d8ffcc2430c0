"""Every refused mutation leaves an event, wherever in the resolver the refusal was raised.

Refusals inside a write unit are recorded there (with the entity type); this catches the rest
(input checked before any transaction began) so no refused attempt goes unrecorded.
"""

from __future__ import annotations

from typing import Any

from strawberry.types.graphql import OperationType

from core.errors import AppError
from resolvers.audit.unit import record_refusal
from resolvers.data.context import Context
from schema.engine.ratelimit import root_selections


async def record_refused_mutations(execution: Any) -> None:
    """After execution (`execution` is strawberry's execution context): the refusals no write unit recorded."""
    context = execution.context
    if not isinstance(context, Context):
        return
    result = execution.result
    if not getattr(result, "errors", None):  # nothing refused (asked first: the operation type costs a walk)
        return
    try:
        if execution.operation_type is not OperationType.MUTATION:
            return
    except RuntimeError:
        return
    document = execution.graphql_document
    fields = root_selections(document, execution.operation_name) if document is not None else {}
    for error in getattr(result, "errors", None) or []:
        original = error.original_error
        if isinstance(original, AppError) and not getattr(original, "recorded", False) and error.path:
            # the field's own name, never the caller's alias for it
            operation = fields.get(str(error.path[0]), "unknown")
            await record_refusal(context, operation=operation, action="mutation", entity_type="", code=original.code)
