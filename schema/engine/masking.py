"""Masked fields: declared with the field, decided by the role set's field decision (policies/decision.py)."""

from __future__ import annotations

from typing import Any

from policies.masking import mask_id_number, mask_phone

__all__ = ["mask_id_number", "mask_phone", "shown"]


def shown(info: Any, value: str | None) -> str | None:
    """The value of the field being resolved as this request's schema may show it: clear, masked or None."""
    return info.schema.decision.shown(info._raw_info.parent_type.name, info.field_name, value)  # type: ignore[no-any-return]
