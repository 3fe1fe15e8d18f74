"""Parsing and formatting the ISO-8601 (and Go) timestamps found in Segment events."""

import re
from datetime import UTC, datetime, timedelta

_ISO = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"(?:[Tt ](?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d+))?)?)?"
    r"(?P<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?"
)

# The forms nearly every event carries, four times over, by length: Segment's and
# JavaScript's (2025-01-31T12:00:00.000Z) and analytics-python's
# (2025-01-31T12:00:00.000+00:00, and with microseconds on sentAt).
_FAST_ENDINGS = {24: "Z", 29: "+00:00", 32: "+00:00"}

# Go's time.String(): "2020-05-09 23:54:49.209808489 +0000 UTC m=+70366.298768264".
# Segment puts this in the originalTimestamp of the delete messages it sends partners.
_GO_TIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2}) (?P<time>\d{2}:\d{2}:\d{2})"
    r"(?:\.(?P<fraction>\d{1,9}))?"
    r" (?P<offset>[+-]\d{4}) (?P<zone>[A-Za-z0-9+-]+)(?: m=[+-]\d+\.\d+)?"
)


def parse_timestamp(value: str) -> datetime | None:
    """Return an aware UTC datetime for an ISO-8601 string, or None if it isn't one.

    A value without an offset is read as UTC, since Segment's timestamps are all UTC.
    """
    if not isinstance(value, str):
        return None
    ending = _FAST_ENDINGS.get(len(value))
    if ending and value.endswith(ending) and value[10] == "T" and value[19] == ".":
        # The C parser reads these forms several times faster than the pattern,
        # and reads them as it does.
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    match = _ISO.fullmatch(value.strip())
    if match is None:
        return None
    parts = match.groupdict()
    # Python keeps microseconds; Go and JS clients may send nanoseconds, so truncate.
    fraction = (parts["fraction"] or "")[:6].ljust(6, "0")
    try:
        moment = datetime(
            int(parts["year"]),
            int(parts["month"]),
            int(parts["day"]),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            int(fraction),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    offset = _offset(parts["zone"])
    if offset is None:
        return None
    try:
        return moment - offset
    except OverflowError:
        # 0001-01-01T00:00:00+01:00 is a real date whose UTC falls before year 1.
        return None


def is_iso_shaped(value: object) -> bool:
    """Whether the text has the form of an ISO-8601 date, valid or not."""
    return isinstance(value, str) and _ISO.fullmatch(value.strip()) is not None


def _offset(zone: str | None) -> timedelta | None:
    if zone is None or zone in ("Z", "z"):
        return timedelta(0)
    digits = zone[1:].replace(":", "")
    if len(digits) not in (2, 4):
        return None
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        return None
    sign = -1 if zone[0] == "-" else 1
    return sign * timedelta(hours=hours, minutes=minutes)


def format_timestamp(moment: datetime) -> str:
    """Format as Segment does: ISO-8601 in UTC, millisecond precision, "Z" suffix."""
    m = as_utc(moment)
    # Truncate rather than round, like JavaScript's Date and Go's ".000" layout.
    # Each field by hand: strftime's %Y gives "1", not "0001", on Linux, and
    # strftime costs more than the rest of a bulk enqueue's timestamps together.
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:"
        f"{m.second:02d}.{m.microsecond // 1000:03d}Z"
    )


def as_utc(moment: datetime) -> datetime:
    """Return the moment in UTC, reading a naive datetime as already being UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_go_time(value: str) -> datetime | None:
    """Return an aware UTC datetime for Go's time.String() form, or None."""
    if not isinstance(value, str):
        return None
    match = _GO_TIME.fullmatch(value.strip())
    if match is None:
        return None
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    offset = match["offset"]
    return parse_timestamp(
        f"{match['date']}T{match['time']}.{fraction}{offset[:3]}:{offset[3:]}"
    )


def format_go_time(
    moment: datetime, *, nanosecond: int = 0, monotonic: float | None = None
) -> str:
    """Format as Go's time.String() in UTC; nanosecond adds sub-microsecond digits."""
    moment = as_utc(moment)
    # Go prints the fraction with trailing zeros removed, and none at all when it is 0.
    nanos = f"{moment.microsecond * 1000 + nanosecond:09d}".rstrip("0")
    text = f"{moment.year:04d}-{moment:%m-%d %H:%M:%S}"
    text += (f".{nanos}" if nanos else "") + " +0000 UTC"
    if monotonic is not None:
        text += f" m=+{monotonic:.9f}"
    return text


def is_go_time(value: object) -> bool:
    """Whether the value is a string in Go's time.String() form."""
    return isinstance(value, str) and parse_go_time(value) is not None
