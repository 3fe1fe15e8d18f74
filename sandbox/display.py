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


def mask_secret(secret: str) -> str:
    """Only the last four characters, enough to tell keys apart."""
    if not secret:
        return ""
    if len(secret) <= 4:
        return "•" * len(secret)
    return "•" * 8 + secret[-4:]


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
