"""The tracking API's spool: each arrived request, stored before it is answered.

A SQLite file of its own (beside the database, in the data directory), so that
storing a request never waits for the main database's write lock, which the
engine and the expansion of earlier requests hold for long stretches: a commit
here takes about a millisecond. The expansion claims requests (a lease, so
several processes can share the file), writes their events to the main
database, then removes them; a request whose events are already there (a crash
between the two) is only removed (see sandbox.sources.services).
"""

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

FILE_NAME = "ingest-spool.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS request (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    write_key TEXT NOT NULL,
    body TEXT NOT NULL,
    refusal TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    received_at TEXT NOT NULL,
    claimed_by TEXT NOT NULL DEFAULT '',
    claimed_until REAL NOT NULL DEFAULT 0
)
"""
_COLUMNS = (
    "endpoint",
    "write_key",
    "body",
    "refusal",
    "client_ip",
    "user_agent",
    "received_at",
)


@dataclass(frozen=True)
class SpooledRequest:
    id: int
    endpoint: str
    write_key: str
    body: str
    refusal: str
    client_ip: str
    user_agent: str
    received_at: str


def path() -> Path:
    """Where the spool is: SOURCES_SPOOL_PATH if set (tests), else the data dir."""
    return Path(
        getattr(settings, "SOURCES_SPOOL_PATH", None) or settings.DATA_DIR / FILE_NAME
    )


_local = threading.local()


def connection(
    *, first_id: Callable[[], int] = lambda: 0, busy_seconds: float = 30.0
) -> sqlite3.Connection:
    """This thread's connection to the spool (autocommit; transactions explicit).

    A new spool numbers its requests after first_id, so numbers stay unique
    across spools (the main database keeps them on each event).
    """
    where = str(path())
    open_connection = getattr(_local, "connection", None)
    if open_connection is not None and _local.path == where:
        return open_connection
    db = sqlite3.connect(
        where, timeout=busy_seconds, isolation_level=None, check_same_thread=False
    )
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("BEGIN IMMEDIATE")
    db.execute(_SCHEMA)
    numbered = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'request'")
    if numbered.fetchone() is None:
        db.execute(
            "INSERT INTO sqlite_sequence (name, seq) VALUES ('request', ?)",
            (first_id(),),
        )
    db.execute("COMMIT")
    _local.connection, _local.path = db, where
    return db


def disconnect() -> None:
    """Close this thread's connection (a test done with its spool)."""
    open_connection = getattr(_local, "connection", None)
    if open_connection is not None:
        open_connection.close()
        _local.connection = _local.path = None


def append(db: sqlite3.Connection, rows: list[tuple]) -> None:
    """Store rows (values in _COLUMNS order) in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(
            f"INSERT INTO request ({', '.join(_COLUMNS)}) VALUES "
            f"({', '.join('?' for _ in _COLUMNS)})",
            rows,
        )
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def claim(
    db: sqlite3.Connection, *, owner: str, limit: int, lease_seconds: float
) -> list[SpooledRequest]:
    """The oldest requests nobody holds, now held by owner for lease_seconds."""
    now = time.time()
    db.execute("BEGIN IMMEDIATE")
    try:
        rows = db.execute(
            f"SELECT id, {', '.join(_COLUMNS)} FROM request "
            "WHERE claimed_until < ? ORDER BY id LIMIT ?",
            (now, limit),
        ).fetchall()
        db.executemany(
            "UPDATE request SET claimed_by = ?, claimed_until = ? WHERE id = ?",
            [(owner, now + lease_seconds, row[0]) for row in rows],
        )
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return [SpooledRequest(*row) for row in rows]


def release(db: sqlite3.Connection, ids: list[int]) -> None:
    """Give claimed requests back (the expansion stopped short)."""
    _each(db, "UPDATE request SET claimed_by = '', claimed_until = 0 WHERE id = ?", ids)


def remove(db: sqlite3.Connection, ids: list[int]) -> None:
    _each(db, "DELETE FROM request WHERE id = ?", ids)


def _each(db: sqlite3.Connection, statement: str, ids: list[int]) -> None:
    if not ids:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(statement, [(pk,) for pk in ids])
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def oldest_waiting(db: sqlite3.Connection) -> str | None:
    """When the oldest request nobody holds arrived (ISO text), or None."""
    row = db.execute(
        "SELECT received_at FROM request WHERE claimed_until < ? ORDER BY id LIMIT 1",
        (time.time(),),
    ).fetchone()
    return row[0] if row else None


def waiting(db: sqlite3.Connection) -> int:
    """Requests not yet expanded."""
    return db.execute("SELECT count(*) FROM request").fetchone()[0]
