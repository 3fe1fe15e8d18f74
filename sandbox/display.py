"""Display helpers shared by every page: masked secrets and readable JSON (pure)."""

import json
import re

MASKED_CREDENTIALS = "••••••••"
# Under a key field on an edit form: the stored key is never sent back to the page.
KEEP_API_KEY_HELP = "Leave blank to keep the current key ({masked})."
_SURROGATE = re.compile("[\ud800-\udfff]")


def safe_text(text: str) -> str:
    """Text that encodes as UTF-8: each lone UTF-16 surrogate becomes U+FFFD.

    JSON may carry "\\ud800", and Python decodes it into a str that no page,
    log or database write can encode; whatever an endpoint or an old row holds is
    shown and stored through this.
    """
    return _SURROGATE.sub("\ufffd", text)


# A masked secret's end tells keys apart; the rest, and its length, stay hidden.
SECRET_MASK = "•" * 8
SECRET_END_SHOWN = 4
# Keys shorter than this show no end at all; longer ones a quarter of it at most.
SECRET_LENGTH_TO_SHOW_AN_END = 8


def mask_secret(secret: str) -> str:
    """At most the last four characters, and at most a quarter of the secret:
    a six-character key shows none of it."""
    if not secret:
        return ""
    if len(secret) < SECRET_LENGTH_TO_SHOW_AN_END:
        return SECRET_MASK
    shown = min(SECRET_END_SHOWN, len(secret) // 4)
    return SECRET_MASK + secret[-shown:]


def mask_authorization(value: str) -> str:
    """The header carries the key (base64 is no disguise): keep only the scheme."""
    scheme = value.split(" ", 1)[0] if " " in value else ""
    return f"{scheme} {MASKED_CREDENTIALS}".strip()


def mask_headers(headers: list) -> list[tuple[str, str]]:
    return [
        (name, mask_authorization(value) if name.lower() == "authorization" else value)
        for name, value in headers
    ]


def indent_json(value: object) -> str:
    """A value as indented JSON for people to read (pages, editors, panes).

    Any value Python's decoder produced encodes: both recurse to the same depth.
    """
    return safe_text(json.dumps(value, indent=2, ensure_ascii=False))


def pretty_json(text: str) -> tuple[str, bool]:
    """Indented JSON and True, or the text as it came and False."""
    try:
        return indent_json(json.loads(text)), True
    except (ValueError, RecursionError):
        # Endpoints answer anything, absurdly nested JSON included.
        return safe_text(text), False
