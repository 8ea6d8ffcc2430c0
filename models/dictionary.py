"""Dictionaries: the labels, order and "in use" flag of the coded values the API exposes.

The values themselves are the code's (every enum of the schema is a dictionary, schema/dictionary.py); a row
here holds only what an admin changed about one value. A value with no row shows its default labels
(resolvers/dictionary/labels.py) in the enum's own order.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import MYSQL_TABLE_ARGS, updated_at_field


class DictionaryEntry(SQLModel, table=True):
    __tablename__ = "dictionary_entry"
    __table_args__ = (UniqueConstraint("dictionary", "code", name="uq_dictionary_entry_code"), MYSQL_TABLE_ARGS)

    id: int | None = Field(default=None, primary_key=True)
    dictionary: str = Field(max_length=64, index=True)
    code: str = Field(max_length=64)
    label_zh: str = Field(max_length=100)
    label_en: str = Field(max_length=100)
    sort_order: int = 0
    in_use: bool = True
    updated_at: datetime = updated_at_field()
