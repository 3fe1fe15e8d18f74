"""Display helpers shared by every page: masked secrets and readable JSON (pure)."""

import json

MASKED_CREDENTIALS = "••••••••"


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


def pretty_json(text: str) -> tuple[str, bool]:
    """Indented JSON and True, or the text as it came and False."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False), True
    except (ValueError, RecursionError):
        # Endpoints answer anything, absurdly nested JSON included.
        return text, False
