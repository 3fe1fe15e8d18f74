"""The SQLite backend (sandbox.sqlite): a writer waits for the write lock in short
steps, gets it once it is free, and still gives up after the configured timeout."""

import sqlite3
import threading
import time

import pytest
from django.db import OperationalError, connection, transaction

from sandbox.sqlite.base import DatabaseWrapper

pytestmark = pytest.mark.django_db(transaction=True)


def _hold_write_lock(seconds: float, held: threading.Event) -> threading.Thread:
    """Another connection (as another process would) holds the lock a while."""

    def hold() -> None:
        other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            held.set()
            time.sleep(seconds)
            other.execute("COMMIT")
        finally:
            other.close()

    thread = threading.Thread(target=hold)
    thread.start()
    return thread


def _busy_timeout(wrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        return cursor.fetchone()[0]


def test_a_writer_waits_while_another_holds_the_lock_then_writes():
    held = threading.Event()
    holder = _hold_write_lock(0.3, held)
    assert held.wait(5)
    started = time.monotonic()
    with transaction.atomic():
        waited = time.monotonic() - started
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE lock_probe (x INTEGER)")
            cursor.execute("INSERT INTO lock_probe VALUES (1)")
    holder.join()
    assert waited >= 0.2
    with connection.cursor() as cursor:
        cursor.execute("SELECT x FROM lock_probe")
        assert cursor.fetchall() == [(1,)]
        cursor.execute("DROP TABLE lock_probe")
    # Every other statement keeps SQLite's own wait, as configured.
    assert _busy_timeout(connection) == 30_000


def test_a_lock_held_past_the_timeout_ends_the_wait_with_a_database_error():
    settings = connection.settings_dict
    short = DatabaseWrapper(
        {**settings, "OPTIONS": {**settings["OPTIONS"], "timeout": 0.2}}, alias="short"
    )
    held = threading.Event()
    holder = _hold_write_lock(1.0, held)
    try:
        assert held.wait(5)
        short.ensure_connection()
        started = time.monotonic()
        with pytest.raises(OperationalError, match="locked"):
            # What transaction.atomic() does first, on this connection.
            short._start_transaction_under_autocommit()
        assert time.monotonic() - started >= 0.2
        assert _busy_timeout(short) == 200
    finally:
        holder.join()
        short.close()
