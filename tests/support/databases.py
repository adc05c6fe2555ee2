"""PostgreSQL for tests: databases with unique names on the shared server, dropped afterwards."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def server_url() -> str:
    """The maintenance database of the server the test run uses."""
    url = os.environ.get("TEST_DATABASE_SERVER", DEFAULT_SERVER)
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


def database_url(name: str) -> str:
    return urlunsplit(urlsplit(server_url())._replace(path=f"/{name}"))


def create_database(name: str) -> str:
    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(name)


def drop_databases(prefix: str) -> list[str]:
    """Drop every database whose name starts with `prefix` (what a run created, even if it crashed)."""
    with psycopg.connect(server_url(), autocommit=True) as conn:
        names = [
            row[0]
            for row in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",))
        ]
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    return names


def reachable() -> str | None:
    try:
        with psycopg.connect(server_url(), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip()
