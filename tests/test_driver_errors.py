"""How a driver's error is read: by its numeric code (MariaDB/MySQL) or the key it names, never by the values in
its message."""

from __future__ import annotations

from sqlalchemy import exc

from core.db import driver_code, lost_race, unreachable, violates_unique


class _MySQLError(Exception):
    """As aiomysql, asyncmy and pymysql raise them: (code, message)."""


def _wrapped(kind: type[exc.DBAPIError], orig: Exception) -> exc.DBAPIError:
    return kind("INSERT ...", {}, orig)


def test_codes_and_keys() -> None:
    duplicate = _wrapped(
        exc.IntegrityError,
        _MySQLError(1062, "Duplicate entry 'x-uq_department_sibling_key' for key 'uq_department_sibling_key'"),
    )
    assert driver_code(duplicate) == 1062
    assert violates_unique(duplicate, "uq_department_sibling_key", "sibling_key")
    # the value in the message cannot fake another key
    faked = _wrapped(
        exc.IntegrityError, _MySQLError(1062, "Duplicate entry 'uq_department_sibling_key' for key 'code'")
    )
    assert not violates_unique(faked, "uq_department_sibling_key", "sibling_key")
    sqlite = _wrapped(exc.IntegrityError, Exception("UNIQUE constraint failed: department.sibling_key"))
    assert driver_code(sqlite) is None and violates_unique(sqlite, "uq_department_sibling_key", "sibling_key")
    assert not violates_unique(
        _wrapped(exc.IntegrityError, Exception("UNIQUE constraint failed: department.code")),
        "uq_department_sibling_key",
        "sibling_key",
    )

    assert lost_race(_wrapped(exc.OperationalError, _MySQLError(1213, "Deadlock found")))
    assert not lost_race(_wrapped(exc.OperationalError, _MySQLError(2013, "Lost connection")))
    assert unreachable(_wrapped(exc.OperationalError, _MySQLError(2013, "Lost connection")))
    assert not unreachable(_wrapped(exc.OperationalError, Exception("database is locked")))
    assert not lost_race(ValueError("not a driver error")) and driver_code(ValueError()) is None
