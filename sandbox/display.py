"""Display helpers shared by every page: masked secrets and readable JSON (pure)."""

import base64
import html
import json
import re
from urllib.parse import quote

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


# A shorter secret is not looked for in text: "k" would mask every k.
SECRET_LENGTH_TO_FIND = 4


def _written_forms(secret: str) -> list[str]:
    """The ways an endpoint may echo a secret: as is, escaped for HTML, JSON or
    a URL, and in base64 as a Basic Authorization header carries it."""
    forms = {
        secret,
        html.escape(secret),
        html.escape(secret, quote=False),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
    }
    for raw in (f"{secret}:", secret):
        encoded = base64.b64encode(raw.encode("utf-8", "surrogatepass")).decode()
        forms.update({encoded, encoded.rstrip("=")})
    # Longest first: a form inside another is replaced as part of it.
    return sorted((f for f in forms if f), key=len, reverse=True)


def mask_secret_in(text: str, secret: str, *, cut: bool = False) -> str:
    """Text with every copy of the secret in it masked, in any of the forms an
    endpoint may echo it (an error message that quotes the key it refused).
    `cut`: the text was cut short, so its end may hold the start of a copy,
    which is masked too."""
    if not text or not secret or len(secret) < SECRET_LENGTH_TO_FIND:
        return text
    shown = mask_secret(secret)
    forms = _written_forms(secret)
    for form in forms:
        text = text.replace(form, shown)
    if cut:
        for form in forms:
            for length in range(len(form) - 1, SECRET_LENGTH_TO_FIND - 1, -1):
                if text.endswith(form[:length]):
                    return text[:-length] + shown
    return text


def mask_secret_everywhere(value: object, secret: str) -> object:
    """mask_secret_in applied to every string of a JSON-like value."""
    if isinstance(value, str):
        return mask_secret_in(value, secret)
    if isinstance(value, dict):
        return {
            key: mask_secret_everywhere(item, secret) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_secret_everywhere(item, secret) for item in value]
    return value


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
