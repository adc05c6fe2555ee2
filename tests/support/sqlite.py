"""Statements written for PostgreSQL, run on a service's SQLite file (the `sqlite` group).

Django stores a UUID column as 32 hex digits on SQLite, with dashes on PostgreSQL. So parameters
that are `uuid.UUID` become hex, a `column::text` cast becomes the dashed text PostgreSQL would give,
and a 32-hex-digit value read back becomes a `uuid.UUID`, as psycopg returns for a UUID column.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

_CAST = re.compile(r"(\b[\w.]+)::text\b")
_HEX = re.compile(r"[0-9a-f]{32}")


def _uuid_text(value: str | None) -> str | None:
    return str(uuid.UUID(value)) if isinstance(value, str) and _HEX.fullmatch(value) else value


def _param(value: Any) -> Any:
    return value.hex if isinstance(value, uuid.UUID) else value


def _value(value: Any) -> Any:
    return uuid.UUID(value) if isinstance(value, str) and _HEX.fullmatch(value) else value


def execute(path: Path, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    assert path.exists(), f"no SQLite database at {path}"
    statement = _CAST.sub(r"uuid_text(\1)", query).replace("%s", "?")
    with closing(sqlite3.connect(path, timeout=30)) as conn:
        conn.create_function("uuid_text", 1, _uuid_text)
        cursor = conn.execute(statement, [_param(p) for p in params])
        rows = cursor.fetchall() if cursor.description else []
        conn.commit()
    return [tuple(_value(v) for v in row) for row in rows]
