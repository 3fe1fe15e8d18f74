"""The garbage collector, set for a long-running process: the server, its
engine, `runengine`, `replay` and `runsuite`.

A loaded sandbox holds a few hundred thousand objects (Django, the apps and
their modules), and CPython's collector walks every one of them in each full
collection, with the event loop stopped meanwhile. In a 10,000-event replay it
collected seven times fully (up to 100 ms each) and 900 times in all, 850 ms
or 8 % of the run. What is loaded at the start stays for the life of the
process, so once loaded it is put out of the collector's sight (gc.freeze), and
the youngest objects are looked at every 10,000 allocations instead of 700 (the
engine makes thousands per delivery, nearly all freed at once by reference
counting): 120 ms in all for the same replay, and 12 to 19 % more events/s.
"""

import gc

YOUNG_THRESHOLD = 10_000
OLDER_THRESHOLD = 10


def settle() -> None:
    """Call once the process has loaded what it runs on, before it serves."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, OLDER_THRESHOLD, OLDER_THRESHOLD)
