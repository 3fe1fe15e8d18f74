"""A replay's source in a uniformly random order, without holding it in memory.

Two passes over bucket files: the first sends each item of the source to one of
BUCKETS files at random; the second reads the buckets in turn and shuffles each
in memory. Ordering every item by (random bucket, random place in its bucket) is
ordering by one independent random key per item, so every order of the whole
source is equally likely, not only orders within a window. Memory holds one
bucket's lines, about 1/BUCKETS of the source.

The order depends only on the seed and the source: a resumed replay rebuilds the
same order (or reuses the buckets, once they are complete) and skips what it
already fed.

An item is (position, event, problem), as the readers give it: where it is in
the source (a line, an element, a delivery's id), and the event or why it is not
one. Pure Python: no Django.
"""

import json
import random
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

BUCKETS = 256
COMPLETE = "complete"
# Buffered per open bucket while the first pass writes them.
WRITE_BUFFER = 32 * 1024
PROGRESS_EVERY = 2000

Item = tuple[int, dict | None, str | None]


class ShuffledSource:
    """The items of `items` in the seeded random order, from `skip` on."""

    def __init__(self, directory: Path, *, seed: str):
        self.directory = Path(directory)
        self.seed = seed
        self.total = 0

    def _bucket(self, number: int) -> Path:
        return self.directory / f"{number:03d}.jsonl"

    def prepare(
        self, items: Iterable[Item], on_progress: Callable[[int], None] | None = None
    ) -> int:
        """The first pass, unless an earlier one completed: every item written to
        a random bucket. Returns how many items the source holds. `on_progress`
        is called with the count so far every PROGRESS_EVERY items."""
        marker = self.directory / COMPLETE
        if marker.exists():
            self.total = int(marker.read_text() or 0)
            return self.total
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True)
        pick = random.Random(f"{self.seed}:buckets").randrange
        files: dict[int, object] = {}
        total = 0
        try:
            for position, event, problem in items:
                number = pick(BUCKETS)
                out = files.get(number)
                if out is None:
                    out = files[number] = self._bucket(number).open(
                        "w", encoding="utf-8", buffering=WRITE_BUFFER
                    )
                # A lone surrogate the reader let through as text stays one.
                out.write(
                    json.dumps([position, event, problem], ensure_ascii=True) + "\n"
                )
                total += 1
                if on_progress is not None and total % PROGRESS_EVERY == 0:
                    on_progress(total)
        finally:
            for out in files.values():
                out.close()
        marker.write_text(str(total))
        self.total = total
        return total

    def items(self, *, skip: int = 0) -> Iterator[Item]:
        """The second pass: each bucket shuffled in memory, read in turn; the
        first `skip` items of that order are passed over."""
        for number in range(BUCKETS):
            path = self._bucket(number)
            if not path.exists():
                continue
            with path.open(encoding="utf-8") as lines:
                bucket = lines.readlines()
            if skip >= len(bucket):
                skip -= len(bucket)
                continue
            random.Random(f"{self.seed}:{number}").shuffle(bucket)
            for line in bucket[skip:]:
                position, event, problem = json.loads(line)
                yield position, event, problem
            skip = 0


def remove(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
