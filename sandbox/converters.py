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
