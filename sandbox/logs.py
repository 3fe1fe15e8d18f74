"""Logging filters for the console."""

import logging


class WithoutTraceback(logging.Filter):
    """A refused request (Django's SuspiciousOperation: too many fields, a bad
    host...) is logged in one line: the client sent something wrong, the
    sandbox did nothing wrong, so a traceback would only look like a failure."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True
