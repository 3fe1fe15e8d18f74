"""Reading a replay's file as a stream: JSON Lines or a JSON array of events,
gzip-compressed or not, one event at a time, never the whole file in memory.

A line (or an array element) that is not a sendable event is reported with its
position and the reason, and reading goes on. Pure Python: no Django.
"""

import codecs
import io
import json
import re
import stat
import sys
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ijson
from ijson.common import ObjectBuilder

from sandbox.spec.json_text import MAX_DEPTH, NUMBER_TOO_LONG, encoded_or_problem
from sandbox.spec.validation import json_kind

GZIP_MAGIC = b"\x1f\x8b"
JSON_LINES = "jsonl"
JSON_ARRAY = "array"
# Segment refuses events over 32 KB; a line far past that is not an event, and
# is skipped without being held in memory.
MAX_LINE_BYTES = 1024 * 1024
# How much of a first line that starts with "[" is looked at to tell JSON Lines.
FIRST_LINE_LOOKED_AT = MAX_LINE_BYTES
READ_BYTES = 256 * 1024
# What the array parser takes at a time: progress through the file is measured
# up to what it took, so it runs ahead of the events by up to this much.
ARRAY_READ_BYTES = 16 * 1024

UNREADABLE = "Cannot read {path}: {detail}"
NOT_GZIP = "the file starts as gzip but is not a readable gzip stream ({detail})"
TRUNCATED = "the file ends early ({detail}); nothing after this point can be read"
NOT_UTF8 = "not UTF-8 text"
A_DIRECTORY = "it is a directory; give the file of events in it"
# A replay reads its file more than once (its format, a look ahead, a resume).
NOT_A_FILE = (
    "it is not a regular file (a pipe or a device can be read only once); save "
    "the events to a file and replay that"
)
UTF16 = (
    "the file is UTF-16 text; Segment's exports are UTF-8: save it as UTF-8 "
    "and replay it again"
)
NOT_JSON = "not JSON: {detail}"
NOT_AN_OBJECT = "not an event: a JSON object is needed, and this is {kind}"
UNSENDABLE = "cannot be sent: {detail}"
TOO_LONG = f"longer than {MAX_LINE_BYTES // 1024} KiB: not an event"
CR_ONLY = (
    "lines separated by a carriage return alone (classic Mac OS line endings) "
    "read as one; save the file with LF or CRLF line endings"
)
NOT_A_NUMBER = "{token} is not a JSON number"
TOO_DEEP = "nested more than {limit} levels deep: not an event"
ARRAY_BROKEN = (
    "the JSON array cannot be read past here ({detail}); the rest of the file "
    "is not read"
)
# What the fast array parser gets wrong, so a file holding any is parsed by
# ijson's pure Python backend: a surrogate written as an escape (it would turn a
# lone one into "?"), and an integer past 64 bits (it stops the whole array
# with "integer overflow", where JSON Lines read it as the number it is). A
# match inside a string costs only speed.
_SLOW_PARSE_NEEDED = re.compile(
    rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}|[:,\[][ \t\r\n]{0,40}-?[0-9]{19}"
)
# Kept from each chunk for the next: a match begun at its end is seen whole.
_SLOW_PARSE_TAIL = 64
# The byte-order marks of UTF-16, which a file saved as "Unicode" starts with.
_UTF16_MARKS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


class FileUnreadable(Exception):
    """The file cannot be opened or read at all: why (`detail`)."""

    def __init__(self, path: Path, detail: str):
        super().__init__(UNREADABLE.format(path=path, detail=detail))
        self.detail = detail


@dataclass(frozen=True)
class Item:
    """One line (JSON Lines) or element (JSON array), counted from 1: an event,
    or why it is not one."""

    position: int
    event: dict | None = None
    problem: str | None = None


def _utf16(start: bytes) -> bool:
    """Whether text starting so is UTF-16: its byte-order mark, or (none) an
    ASCII character and a NUL in either order, twice."""
    if start.startswith(_UTF16_MARKS):
        return True
    return len(start) >= 4 and (
        (start[1] == start[3] == 0 and start[0] and start[2])
        or (start[0] == start[2] == 0 and start[1] and start[3])
    )


def _refuse_constant(token: str) -> float:
    raise ValueError(NOT_A_NUMBER.format(token=token))


_decode = json.JSONDecoder(parse_constant=_refuse_constant).decode


def event_or_problem(value: object) -> tuple[dict | None, str | None]:
    """The value as an event the pipeline can send, or why it is not one."""
    if not isinstance(value, dict):
        return None, NOT_AN_OBJECT.format(kind=json_kind(value))
    _, problem = encoded_or_problem(value)
    if problem is not None:
        return None, UNSENDABLE.format(detail=problem)
    return value, None


class _Counting(io.RawIOBase):
    """The file's raw bytes, counting how many were read (progress through a
    compressed file is measured on the file, not on what it holds)."""

    def __init__(self, raw):
        self._raw = raw
        self.consumed = 0

    def close(self) -> None:
        self._raw.close()
        super().close()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        read = self._raw.readinto(buffer)
        self.consumed += read or 0
        return read

    def tell(self) -> int:
        return self.consumed


class _Gunzip(io.RawIOBase):
    """gzip's content as a stream that gives everything the file holds before
    reporting a truncated end (EOFError), and reads concatenated members."""

    def __init__(self, raw):
        self._raw = raw
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._pending = b""
        self._input = b""
        # Content bytes handed out, and what each inflate call stood at:
        # (content bytes made, file bytes inflated), the last few.
        self._given = 0
        self._made = 0
        self._marks: deque[tuple[int, int]] = deque([(0, 0)], maxlen=8)

    def tell(self) -> int:
        return self._given

    def file_position(self, content: int) -> int:
        """Where in the file the content's byte `content` came from: between
        the marks of the inflate call that made it, in proportion. Reading is
        measured per line, not per 256 KiB of the file, so a gzipped file's
        progress (and the estimate of how many events it holds) moves evenly."""
        before = self._marks[0]
        for mark in self._marks:
            if mark[0] >= content:
                made = mark[0] - before[0]
                if made <= 0:
                    return mark[1]
                share = (content - before[0]) / made
                return before[1] + int((mark[1] - before[1]) * share)
            before = mark
        return before[1]

    def close(self) -> None:
        self._raw.close()
        super().close()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        size = len(buffer)
        while not self._pending:
            if self._inflate.eof:
                rest = self._inflate.unused_data + self._input
                self._input = b""
                if not rest:
                    rest = self._raw.read(READ_BYTES)
                if not rest.strip(b"\x00"):
                    return 0
                self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._input = rest
            if not self._input:
                self._input = self._raw.read(READ_BYTES)
                if not self._input:
                    raise EOFError("the gzip stream is cut off")
            self._pending = self._inflate.decompress(self._input, READ_BYTES)
            self._input = self._inflate.unconsumed_tail
            self._made += len(self._pending)
            self._marks.append((self._made, self._raw.tell() - len(self._input)))
        taken, self._pending = self._pending[:size], self._pending[size:]
        buffer[: len(taken)] = taken
        self._given += len(taken)
        return len(taken)


class EventFile:
    """A replay file: its compression and format found from its first bytes."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        try:
            found = self.path.stat()
            if stat.S_ISDIR(found.st_mode):
                raise FileUnreadable(self.path, A_DIRECTORY)
            if not stat.S_ISREG(found.st_mode):
                raise FileUnreadable(self.path, NOT_A_FILE)
            self.size = found.st_size
            with self.path.open("rb") as raw:
                self.gzipped = raw.read(2) == GZIP_MAGIC
            with self._open(measured=False) as stream:
                first = self._first_byte(stream)
        except FileUnreadable:
            raise
        except (OSError, EOFError, zlib.error) as error:
            raise FileUnreadable(self.path, _detail(error)) from None
        array = first == b"[" and not self._lines_of_values()
        self.format = JSON_ARRAY if array else JSON_LINES
        self.unit = "element" if self.format == JSON_ARRAY else "line"
        self.consumed = 0

    def _open(self, *, measured: bool = True):
        """The content as a stream; `measured`, the one bytes_read follows (the
        reading's own, not a look ahead through the file)."""
        counter = _Counting(self.path.open("rb"))
        counted = io.BufferedReader(counter, READ_BYTES)
        gunzip = _Gunzip(counted) if self.gzipped else None
        stream = io.BufferedReader(gunzip, READ_BYTES) if gunzip else counted
        if measured:
            self._counter, self._gunzip, self._stream = counter, gunzip, stream
        return stream

    def _first_byte(self, stream) -> bytes:
        """The first byte of the content that is not white space. UTF-16 text
        (its byte-order mark, or a NUL beside each character) is refused: every
        line of it would only be reported as not UTF-8."""
        if self.gzipped:
            # Decompressed by hand: a truncated stream still shows its start.
            stream = io.BytesIO(self._gzip_start())
        chunk = stream.read(64)
        if _utf16(chunk):
            raise FileUnreadable(self.path, UTF16)
        while chunk:
            stripped = chunk.removeprefix(codecs.BOM_UTF8).lstrip()
            if stripped:
                return stripped[:1]
            chunk = stream.read(64)
        return b""

    def _lines_of_values(self) -> bool:
        """Whether a file that starts with "[" is JSON Lines all the same: its
        first line a whole JSON value with more lines after it (an array on
        the first line, events on the next), not one array across the file."""
        try:
            with self._open(measured=False) as stream:
                line = stream.readline(FIRST_LINE_LOOKED_AT + 1)
                if len(line) > FIRST_LINE_LOOKED_AT or not line.endswith(b"\n"):
                    return False
                try:
                    json.loads(line.removeprefix(codecs.BOM_UTF8))
                except ValueError:
                    return False
                while rest := stream.read(READ_BYTES):
                    if rest.strip():
                        return True
        except (OSError, EOFError, zlib.error):
            return False
        return False

    def _gzip_start(self) -> bytes:
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        start = b""
        with self.path.open("rb") as raw:
            while len(start) < 64 and (compressed := raw.read(READ_BYTES)):
                try:
                    start += inflate.decompress(compressed, 4096)
                except zlib.error as error:
                    raise FileUnreadable(
                        self.path, NOT_GZIP.format(detail=error)
                    ) from None
                if inflate.eof or start.strip():
                    break
        return start

    @property
    def bytes_read(self) -> int:
        """How far into the file (as stored) reading has come: up to the end of
        what the reader took (not what was read ahead into buffers)."""
        counter = getattr(self, "_counter", None)
        if counter is None:
            return 0
        if self._stream.closed:
            # Read to its end, or given up: as far as the file was read.
            return counter.consumed
        try:
            taken = self._stream.tell()
        except (OSError, ValueError):
            return counter.consumed
        if self._gunzip is None:
            return taken
        return self._gunzip.file_position(taken)

    def items(self, *, skip: int = 0) -> Iterator[Item]:
        """Each line or element after the first `skip`, in order. Blank lines are
        not counted as events but keep their line numbers."""
        read = self._lines if self.format == JSON_LINES else self._elements
        try:
            stream = self._open()
        except OSError as error:
            raise FileUnreadable(self.path, _detail(error)) from None
        with stream:
            yield from read(stream, skip)

    def _lines(self, stream, skip: int) -> Iterator[Item]:
        number = 0
        while True:
            try:
                line = stream.readline(MAX_LINE_BYTES + 1)
            except (OSError, EOFError, zlib.error) as error:
                yield Item(number + 1, problem=TRUNCATED.format(detail=_detail(error)))
                return
            if not line:
                return
            number += 1
            too_long = len(line) > MAX_LINE_BYTES and not line.endswith(b"\n")
            if too_long:
                problem = self._skip_rest_of_line(stream)
                if problem is not None:
                    yield Item(number, problem=problem)
                    return
            if number <= skip:
                continue
            if too_long:
                yield Item(number, problem=CR_ONLY if _cr_only(line) else TOO_LONG)
                continue
            if number == 1:
                line = line.removeprefix(codecs.BOM_UTF8)
            if not line.strip():
                number += _pass_empty_lines(stream)
                continue
            yield _parsed_line(number, line)

    def _skip_rest_of_line(self, stream) -> str | None:
        while True:
            try:
                rest = stream.readline(READ_BYTES)
            except (OSError, EOFError, zlib.error) as error:
                return TRUNCATED.format(detail=_detail(error))
            if not rest or rest.endswith(b"\n"):
                return None

    def _elements(self, stream, skip: int) -> Iterator[Item]:
        backend = ijson.get_backend("python") if self._needs_slow_parse() else ijson
        try:
            if stream.peek(len(codecs.BOM_UTF8)).startswith(codecs.BOM_UTF8):
                # The parser takes no byte-order mark; JSON Lines drop it too.
                stream.read(len(codecs.BOM_UTF8))
        except (OSError, EOFError, zlib.error) as error:
            yield Item(1, problem=TRUNCATED.format(detail=_detail(error)))
            return
        number = 0
        try:
            for value, problem in _array_values(
                backend.basic_parse(stream, use_float=True, buf_size=ARRAY_READ_BYTES)
            ):
                number += 1
                if number <= skip:
                    continue
                if problem is not None:
                    yield Item(number, problem=problem)
                    continue
                event, problem = event_or_problem(value)
                yield Item(number, event=event, problem=problem)
        except (OSError, EOFError, zlib.error) as error:
            yield Item(number + 1, problem=TRUNCATED.format(detail=_detail(error)))
        except (ijson.JSONError, ijson.IncompleteJSONError, ValueError) as error:
            detail = " ".join(str(error).split())[:200]
            yield Item(number + 1, problem=ARRAY_BROKEN.format(detail=detail))

    def _needs_slow_parse(self) -> bool:
        """Whether the file holds what the fast parser gets wrong (a surrogate
        escape, a long integer): one streaming pass."""
        tail = b""
        try:
            with self._open(measured=False) as stream:
                while chunk := stream.read(READ_BYTES):
                    if _SLOW_PARSE_NEEDED.search(tail + chunk):
                        return True
                    tail = chunk[-_SLOW_PARSE_TAIL:]
        except (OSError, EOFError, zlib.error):
            # Read as far as it goes; the parse reports where the file ends.
            return False
        return False


_OPENS = ("start_map", "start_array")
_CLOSES = ("end_map", "end_array")


def _array_values(events) -> Iterator[tuple[object, str | None]]:
    """Each element of a top-level JSON array, built from the parser's events:
    (value, None), or (None, why) for an element nested deeper than MAX_DEPTH,
    whose events are passed over without building anything. (ijson's own
    items() gives every event a prefix as long as its depth, which costs memory
    in the square of the depth: a file of "[[[[..." would take gigabytes.)"""
    depth = 0
    builder: ObjectBuilder | None = None
    too_deep = False
    for event, value in events:
        if depth == 0:
            if event != "start_array":
                # Not an array at the top: the caller says where it broke.
                raise ValueError(f"expected an array, found {event}")
            depth = 1
            continue
        if depth == 1 and event == "end_array" and builder is None:
            # The array's own end.
            depth = 0
            continue
        if event in _OPENS:
            depth += 1
        if not too_deep:
            if depth - 1 > MAX_DEPTH:
                too_deep, builder = True, None
            else:
                builder = builder or ObjectBuilder()
                builder.event(event, value)
        if event in _CLOSES:
            depth -= 1
        if depth == 1:
            # The element ended (a scalar ends where it starts).
            yield (
                (None, TOO_DEEP.format(limit=MAX_DEPTH))
                if too_deep
                else (builder.value, None)
            )
            builder, too_deep = None, False


def _pass_empty_lines(stream) -> int:
    """Pass over the empty lines that follow, a buffer at a time: how many. (A
    file of nothing but newlines, a few megabytes gzipped, took a Python step
    per line: 47 s for 200 MB of them.)"""
    passed = 0
    while True:
        try:
            ahead = stream.peek(1)
        except (OSError, EOFError, zlib.error):
            # The next read reports it.
            return passed
        run = len(ahead) - len(ahead.lstrip(b"\n"))
        if not run:
            return passed
        stream.read(run)
        passed += run


def _cr_only(line: bytes) -> bool:
    """Whether a line holds more lines, each ended by a carriage return alone."""
    return b"\r" in line.rstrip() and b"\n" not in line.rstrip()


def _parsed_line(number: int, line: bytes) -> Item:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return Item(number, problem=NOT_UTF8)
    try:
        value = _decode(text.strip())
    except ValueError as error:
        if _cr_only(line):
            return Item(number, problem=CR_ONLY)
        detail = str(error).split(": line ")[0]
        if "integer string conversion" in detail:
            detail = NUMBER_TOO_LONG.format(limit=sys.get_int_max_str_digits())
        return Item(number, problem=NOT_JSON.format(detail=detail))
    except RecursionError:
        return Item(number, problem=NOT_JSON.format(detail="nested too deeply"))
    event, problem = event_or_problem(value)
    return Item(number, event=event, problem=problem)


def _detail(error: BaseException) -> str:
    return str(error) or type(error).__name__
