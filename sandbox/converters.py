"""Path converters for the sandbox's addresses."""

from django.urls import register_converter

# SQLite's ids are signed 64-bit integers: a longer number names no row, and
# binding it to a query would fail (OverflowError) instead of finding nothing.
MAX_ID = 2**63 - 1


class IdConverter:
    """A row's id: a whole number up to MAX_ID (anything longer is no match,
    so the address answers 404). 0 names no row; a page may give it a meaning
    of its own (the source debugger's unknown write keys)."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValueError(value)
        return number

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")


def id_from(text: str | None) -> int | None:
    """A row's id as a query string or an argument gives it, or None for
    anything else: only ASCII digits (str.isdigit() also takes "²", which
    int() refuses), and no longer than an id can be."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    number = int(text)
    return number if number <= MAX_ID else None
