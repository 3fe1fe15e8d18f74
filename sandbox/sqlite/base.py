"""Django's SQLite backend, with a writer that waits for the lock in short steps.

Every write transaction starts with `BEGIN IMMEDIATE` (settings), so a writer
waits for the lock up front. SQLite's own wait (the busy timeout) sleeps 1, 2,
5, 10, 15, 20 and 25 ms between tries: a writer that finds the lock taken for
3 ms gets it after 8 ms, and the wait grows with each miss. The engine's writes,
the page's sends and the mock's records take the lock many times a second, each
for a few milliseconds, so those sleeps added up to a quarter of a second over a
burst of 200 sends, in the one thread that serves pages.

Here `BEGIN` tries at once, then every 0.1 ms doubling to 2 ms, until the
configured timeout; every other statement keeps SQLite's own wait.
"""

import time

from django.db.backends.sqlite3 import base

FIRST_WAIT_SECONDS = 0.0001
LONGEST_WAIT_SECONDS = 0.002


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        params = super().get_connection_params()
        self._lock_timeout = float(params.get("timeout", 5.0))
        return params

    def _start_transaction_under_autocommit(self):
        begin = (
            "BEGIN"
            if self.transaction_mode is None
            else (f"BEGIN {self.transaction_mode}")
        )
        raw = self.connection
        timeout_ms = round(self._lock_timeout * 1000)
        deadline = time.monotonic() + self._lock_timeout
        wait = FIRST_WAIT_SECONDS
        with self.wrap_database_errors:
            raw.execute("PRAGMA busy_timeout = 0")
            try:
                while True:
                    try:
                        raw.execute(begin)
                        return
                    except base.Database.OperationalError as error:
                        busy = getattr(error, "sqlite_errorname", "") in {
                            "SQLITE_BUSY",
                            "SQLITE_LOCKED",
                        } or "locked" in str(error)
                        if not busy or time.monotonic() >= deadline:
                            raise
                    time.sleep(wait)
                    wait = min(wait * 2, LONGEST_WAIT_SECONDS)
            finally:
                raw.execute(f"PRAGMA busy_timeout = {timeout_ms}")
