"""What the clinical modules share: plausible dates."""

from __future__ import annotations

from datetime import date, timedelta

from core.errors import bad_input


def check_date(value: date, field: str) -> date:
    if not date(1900, 1, 1) <= value <= date.today() + timedelta(days=366):
        raise bad_input("Date out of range", field)
    return value
