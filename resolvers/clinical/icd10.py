"""The ICD-10 code table shipped for diagnoses (K50-K64, C18-C21 and related), in memory."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.errors import bad_input

_TABLE = Path(__file__).with_name("icd10_colorectal.csv")
_CODE = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")


@dataclass(frozen=True)
class Icd10Code:
    code: str
    name_zh: str
    name_en: str


@lru_cache(maxsize=1)
def codes() -> dict[str, Icd10Code]:
    with _TABLE.open(encoding="utf-8") as handle:
        return {row["code"]: Icd10Code(row["code"], row["name_zh"], row["name_en"]) for row in csv.DictReader(handle)}


def normalise(code: str) -> str:
    return code.strip().upper()


def lookup(code: str) -> Icd10Code:
    """The code's entry; BAD_USER_INPUT for a malformed or unknown code."""
    normalised = normalise(code)
    if not _CODE.match(normalised) or normalised not in codes():
        raise bad_input(f"Unknown ICD-10 code: {code[:16]}", "icd10Code")
    return codes()[normalised]


def search(term: str, limit: int = 20) -> list[Icd10Code]:
    """Codes by prefix, or names (Chinese or English) containing the term, codes first."""
    term = term.strip()
    if not term:
        return []
    upper, lower = term.upper(), term.lower()
    by_code = [entry for code, entry in codes().items() if code.startswith(upper)]
    by_name = [
        entry
        for entry in codes().values()
        if entry not in by_code and (term in entry.name_zh or lower in entry.name_en.lower())
    ]
    return (by_code + by_name)[:limit]
