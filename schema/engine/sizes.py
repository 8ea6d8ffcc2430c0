"""What a GraphQL document costs to keep: the caches that hold documents (or nodes of them) weigh their entries
by the document's source, so a client cannot fill the process with large documents.

Measured with tracemalloc on graphql-core 3.3: a parsed document takes about 70 bytes per character of its
source (a comment-only document keeps its source string); 80 leaves a margin.
"""

from __future__ import annotations

from typing import Any

AST_BYTES_PER_CHAR = 80

# Budgets of the document caches, in estimated bytes (each also bounded by entries).
PARSED_BYTES = 16 << 20  # parsed documents by text, for the whole process
PREPARED_BYTES = 16 << 20  # parsed and validated documents, per role schema
PLANS_BYTES = 8 << 20  # compiled completions, per role schema
COSTS_BYTES = 8 << 20  # document costs and the page-size variables they depend on
COLUMNS_BYTES = 8 << 20  # projected columns per field node
APQ_BYTES = 8 << 20  # automatic persisted query texts held in process


def text_weight(text: str) -> int:
    return len(text) * AST_BYTES_PER_CHAR


def node_weight(node: Any) -> int:
    """The weight of the document a node (or a document) belongs to: 0 when it carries no location."""
    loc = getattr(node, "loc", None)
    source = getattr(loc, "source", None) if loc is not None else None
    body = getattr(source, "body", "") if source is not None else ""
    return len(body) * AST_BYTES_PER_CHAR


def document_too_long(text: str, limit: int) -> bool:
    """Longer than `limit` bytes in UTF-8 (checked without encoding when the characters alone decide)."""
    if len(text) > limit:
        return True
    return len(text) * 4 > limit and len(text.encode("utf-8")) > limit
