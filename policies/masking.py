"""Masks, keyed by the schema coordinate they apply to. `read_masked` is only meaningful for these: the policy
store refuses a `read_masked` line on any other coordinate (a field with no mask would show in clear)."""

from __future__ import annotations

from collections.abc import Callable


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


MASKS: dict[str, Callable[[str], str]] = {
    "Patient.phone": mask_phone,
    "Patient.idNumber": mask_id_number,
    "Patient.emergencyContactPhone": mask_phone,
}


# What a typed search term must look like to be compared with a masked value at all: a name search ("张",
# "ZSF") is never a lookup of an identity number, so it spends nothing of the caller's lookups.
def looks_like_phone(term: str) -> bool:
    digits = term.strip().replace(" ", "").replace("-", "").removeprefix("+")
    return digits.isascii() and digits.isdigit() and 7 <= len(digits) <= 15


def looks_like_id_number(term: str) -> bool:
    text = term.strip().upper()
    return text.isascii() and len(text) in (15, 18) and text[:-1].isdigit() and (text[-1].isdigit() or text[-1] == "X")


SHAPES: dict[str, Callable[[str], bool]] = {
    "Patient.phone": looks_like_phone,
    "Patient.idNumber": looks_like_id_number,
    "Patient.emergencyContactPhone": looks_like_phone,
}
