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


async def record_refused_mutations(execution: Any) -> None:
    """After execution (`execution` is strawberry's execution context): the refusals no write unit recorded."""
    context = execution.context
    if not isinstance(context, Context):
        return
    try:
        if execution.operation_type is not OperationType.MUTATION:
            return
    except RuntimeError:
        return
    result = execution.result
    for error in getattr(result, "errors", None) or []:
        original = error.original_error
        if isinstance(original, AppError) and not getattr(original, "recorded", False) and error.path:
            await record_refusal(
                context, operation=str(error.path[0]), action="mutation", entity_type="", code=original.code
            )
