"""Checks of clinical input shared by the patient and clinical resolvers."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from enum import StrEnum
from typing import TypeVar

from pypinyin import Style, lazy_pinyin

from core.errors import bad_input

E = TypeVar("E", bound=StrEnum)

_RESIDENT_ID = re.compile(r"^[1-9][0-9]{16}[0-9X]$")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"


def check_resident_id(value: str) -> str:
    """A mainland resident identity number (GB 11643-1999): 18 characters, valid birth date, checksum."""
    number = value.strip().upper()
    if not _RESIDENT_ID.match(number):
        raise bad_input("An identity number has 17 digits and a check digit (0-9 or X)", "idNumber")
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError as error:
        raise bad_input("The identity number holds no valid birth date", "idNumber") from error
    total = sum(int(digit) * weight for digit, weight in zip(number[:17], _WEIGHTS, strict=True))
    if _CHECK_CHARS[total % 11] != number[17]:
        raise bad_input("The identity number's check digit is wrong", "idNumber")
    return number


def initials(name: str) -> str:
    """Pinyin initials for search: 张三丰 -> ZSF; Latin words keep their first letter."""
    parts = lazy_pinyin(name, style=Style.FIRST_LETTER, errors="ignore")
    letters = []
    for part in parts:
        for word in part.split():
            if word and word[0].isalnum():
                letters.append(word[0])
    return "".join(letters).upper()[:40]


# Characters no text a person writes contains: C0 and C1 controls (tab and line breaks aside) and the Unicode
# directional overrides and isolates, which can make a name read as something else (U+202E reverses what follows).
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


# Characters that show nothing (or nothing of their own) and so can hide a word from a filter while it reads the
# same: the Unicode format characters (zero-width space and joiners, soft hyphen, word joiner, byte-order mark,
# directional marks, tags), variation selectors, the combining grapheme joiner and the Hangul and Khmer fillers.
INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\U000e0000-\U000e0fff"
)
_INVISIBLE = re.compile(f"[{INVISIBLE}]")


def without_invisible(value: str) -> str:
    """The text without invisible characters (those listed above, and any other Unicode format character)."""
    value = _INVISIBLE.sub("", value)
    if value.isascii():
        return value
    return "".join(ch for ch in value if unicodedata.category(ch) != "Cf")


def folded(value: str) -> str:
    """What words are matched against (moderation keywords, staff titles): invisible characters out, NFKC
    (full-width letters, ligatures and compatibility forms become ordinary ones), case-folded. The text itself
    is kept as written; only the comparison uses this form."""
    text = unicodedata.normalize("NFKC", without_invisible(value)).casefold()
    return without_invisible(text)  # NFKC can itself produce a format character (rare, but cheap to drop)


# Titles only staff hold: shown from the role (never from a name a person picks), so a self-chosen name may not
# carry one ("张主任", "Dr Zhang", "Zhang (chief physician)"). Matched on the folded name (invisible characters,
# full-width letters and case cannot hide one); Latin ones as whole words ("Andrew" is no "dr").
_STAFF_TITLES_CJK = (
    "主任", "医生", "医师", "大夫", "护士", "护师", "院长", "主治", "教授", "专家", "药师", "技师",
    "管理员", "客服", "官方", "医院", "科室", "大夫",
)  # fmt: skip
_STAFF_TITLES_LATIN = re.compile(
    r"(?<![a-z])(dr|doctor|doc|chief|physician|nurse|surgeon|professor|prof|admin|administrator|staff|official|"
    r"md|rn|clinician|hospital|moderator)(?![a-z])"
)


def poses_as_staff(name: str) -> bool:
    """Whether a name carries a staff title (Chinese or English), in any disguise."""
    text = folded(name)
    compact = "".join(ch for ch in text if not ch.isspace() and ch not in "·.-_()（）[]【】")
    return any(title in compact for title in _STAFF_TITLES_CJK) or bool(_STAFF_TITLES_LATIN.search(text))


def check_characters(value: str, field: str) -> str:
    """Refuse control characters and directional overrides (BAD_USER_INPUT naming the field)."""
    if _FORBIDDEN.search(value):
        raise bad_input("Contains control or text-direction characters", field)
    return value


def text(value: str | None, field: str, *, limit: int = 20000, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise bad_input("Required", field)
        return None
    value = check_characters(value, field).strip()
    if required and not value:
        raise bad_input("Required", field)
    if len(value) > limit:
        raise bad_input(f"At most {limit} characters", field)
    return value or None


def score(value: int | None, field: str, low: int, high: int) -> int | None:
    if value is not None and not low <= value <= high:
        raise bad_input(f"Must be between {low} and {high}", field)
    return value


def choice(enum: type[E], value: str, field: str) -> E:
    try:
        return enum(value)
    except ValueError as error:
        allowed = ", ".join(member.value for member in enum)
        raise bad_input(f"Must be one of: {allowed}", field) from error
