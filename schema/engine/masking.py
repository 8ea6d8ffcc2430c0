"""Masked fields: declared with the field, decided by the policy (`read` full, `read_masked` masked)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schema.engine.builder import FieldMode


def mask_phone(value: str) -> str:
    """138****5678"""
    digits = value.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_id_number(value: str) -> str:
    """610***********1234"""
    text = value.strip()
    if len(text) <= 7:
        return "*" * len(text)
    return text[:3] + "*" * (len(text) - 7) + text[-4:]


def shown(info: Any, value: str | None, mask: Callable[[str], str]) -> str | None:
    """The value as this request's schema may show it: full, or masked where the policy says so."""
    if value is None:
        return None
    mode = info.schema.field_mode(info._raw_info.parent_type.name, info.field_name)
    return mask(value) if mode is FieldMode.MASKED else value
