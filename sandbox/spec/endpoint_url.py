"""Where Segment can deliver: the one check of an endpoint URL, in plain sentences.

Pure, so the subscription form, the CLI and the transport that refuses to send all
say the same thing about the same URL.
"""

from urllib.parse import urlsplit

ENDPOINT_URL_SCHEME_ERROR = "The endpoint URL must start with http:// or https://"
ENDPOINT_URL_HOST_ERROR = (
    "The endpoint URL needs a host, for example http://localhost:3000/segment"
)
ENDPOINT_URL_PORT_ERROR = "The endpoint URL's port must be a number from 1 to 65535."
ENDPOINT_URL_WHITESPACE_ERROR = "The endpoint URL must not contain spaces."
ENDPOINT_URL_CREDENTIALS_ERROR = (
    "The endpoint URL must not contain a user name or password (user:pass@host): "
    "Segment sends the API key as Basic auth in the Authorization header instead."
)


def endpoint_url_problem(value: str) -> str | None:
    """Why an endpoint URL cannot be used, or None for any http(s) URL with a host.

    Localhost and bare hostnames are fine: Django's URLValidator is not used because
    it rejects single-label hosts such as a docker-compose service name
    (http://receiver:3000), which is normal local work.
    """
    if not value.lower().startswith(("http://", "https://")):
        return ENDPOINT_URL_SCHEME_ERROR
    if any(character.isspace() for character in value):
        return ENDPOINT_URL_WHITESPACE_ERROR
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError:
        # urlsplit refuses malformed IPv6 brackets; the host is what is wrong.
        return ENDPOINT_URL_HOST_ERROR
    if not hostname:
        return ENDPOINT_URL_HOST_ERROR
    if parts.username is not None or parts.password is not None:
        return ENDPOINT_URL_CREDENTIALS_ERROR
    try:
        port_is_valid = parts.port != 0
    except ValueError:
        port_is_valid = False
    if not port_is_valid:
        return ENDPOINT_URL_PORT_ERROR
    return None
