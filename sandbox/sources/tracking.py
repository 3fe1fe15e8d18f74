"""Segment's HTTP Tracking API in pure Python: paths, limits, reading a request's
body and enriching each event it carries (segment-reference.md section 5).

No Django here: the door (sandbox.sources.api) reads requests with it before any
database work, and the expansion (sandbox.sources.services) enriches with it.
"""

import base64
import binascii
import ipaddress
import json
import re
import zlib
from dataclasses import dataclass
from datetime import datetime

from sandbox import spec
from sandbox.spec import json_text
from sandbox.spec.constants import BROWSER_LIBRARIES, MOBILE_LIBRARIES
from sandbox.spec.validation import json_kind

BATCH = "batch"
METRICS = "metrics"
CALL_TYPES = ("identify", "track", "page", "screen", "group", "alias")

# The long paths (docs), analytics.js's one-letter paths, /v1/b for its batching
# mode, /v1/import (analytics-ruby's default, read as a batch) and /v1/m (metrics).
ENDPOINTS: dict[str, str] = {
    **{f"/v1/{call}": call for call in CALL_TYPES},
    **{f"/v1/{call[0]}": call for call in CALL_TYPES},
    "/v1/batch": BATCH,
    "/v1/import": BATCH,
    "/v1/b": BATCH,
    "/v1/m": METRICS,
}

# Segment's limits (segment-reference.md 5.3); a KB is 1,024 bytes, as the SDKs
# count it.
MAX_EVENT_BYTES = spec.MAX_EVENT_BYTES
MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2_500
# How much of a refused request's body is kept to show.
REFUSED_BODY_PREVIEW = 2_000

INVALID_JSON = "invalid_json"
NO_WRITE_KEY = "no_write_key"
EVENT_TOO_LARGE = "event_too_large"
BATCH_TOO_LARGE = "batch_too_large"

NOT_UTF8 = "Invalid JSON: the body is not UTF-8 text."
BAD_GZIP = "Invalid gzip body: {detail}."
UNSUPPORTED_ENCODING = (
    "Content-Encoding {encoding!r} is not supported; send the body as it is, "
    "or gzip it."
)
NOT_AN_OBJECT = "Invalid JSON: the body must be a JSON object, not {kind}."
BATCH_NOT_A_LIST = "Invalid JSON: batch must be an array of events, not {kind}."
WRITE_KEY_MISSING = (
    "No write key: give it as the body's writeKey or as the Basic auth user name."
)
EVENT_OVER_LIMIT = (
    "The event is {size:,} bytes; Segment accepts at most 32 KB ({limit:,} "
    "bytes) per event."
)
EVENT_OVER_READ = (
    "The event is over {read:,} bytes; Segment accepts at most 32 KB ({limit:,} "
    "bytes) per event."
)
BATCH_EVENT_OVER_LIMIT = (
    "Event {number} of the batch is {size:,} bytes; Segment accepts at most "
    "32 KB ({limit:,} bytes) per event."
)
BATCH_OVER_LIMIT = (
    "The request is over {limit:,} bytes; Segment accepts at most 500 KB per "
    "batch request."
)
DECOMPRESSED_EVENT_OVER_LIMIT = (
    "The gzip body unpacks to more than {read:,} bytes; Segment accepts at most "
    "32 KB ({limit:,} bytes) per event."
)
DECOMPRESSED_OVER_LIMIT = (
    "The gzip body unpacks to more than {limit:,} bytes; Segment accepts at most "
    "500 KB per batch request."
)
TOO_MANY_EVENTS = (
    "The batch holds {count:,} events; Segment accepts at most 2,500 per batch: "
    "it answers 200 and drops them all."
)
ITEM_NOT_AN_EVENT = "Not an event: a batch item must be a JSON object, not {kind}."
ITEM_NOT_A_CALL = (
    "Unknown type {found}: the tracking API takes " + ", ".join(CALL_TYPES) + "."
)
ITEM_NO_TYPE = (
    "The event has no type: in a batch each event names its own, one of "
    + ", ".join(CALL_TYPES)
    + "."
)
# Partners receive delete messages, but only from Segment (segment-reference.md
# section 8): a client cannot send one through the tracking API.
ITEM_DELETE = (
    "Not a tracking API call: user deletions are not sent through the tracking "
    "API; Segment sends delete messages to partners itself when a deletion "
    "regulation runs. Use one of " + ", ".join(CALL_TYPES) + "."
)


@dataclass(frozen=True)
class Refusal:
    """Why a request is answered 400, in the body Segment's SDKs read."""

    code: str
    message: str

    def body(self) -> dict:
        return {"code": self.code, "message": self.message, "error": self.message}


@dataclass
class ReadRequest:
    """What the door made of a request: its JSON text to store, or why not."""

    write_key: str = ""
    text: str = ""
    refusal: Refusal | None = None
    # Events the body carries (over 2,500 in a batch are answered 200 all the
    # same, and dropped when the request is expanded).
    event_count: int = 0


def basic_auth_user(header: str) -> str:
    """The user name of a Basic Authorization header (Segment's write key), or ""."""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    # The doc warns that a key without the colon "might work": it does here.
    return decoded.partition(":")[0]


def decompress(raw: bytes, *, limit: int) -> tuple[bytes | None, Refusal | None]:
    """Unpack a gzip body, reading no more than limit bytes of it (a small body
    can unpack to gigabytes)."""
    unpacker = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = unpacker.decompress(raw, limit + 1)
    except zlib.error as error:
        return None, Refusal(INVALID_JSON, BAD_GZIP.format(detail=error))
    if len(data) > limit:
        return None, Refusal(
            BATCH_TOO_LARGE, DECOMPRESSED_OVER_LIMIT.format(limit=limit)
        )
    if not unpacker.eof:
        return None, Refusal(INVALID_JSON, BAD_GZIP.format(detail="it ends early"))
    return data, None


def read_body(
    raw: bytes, *, endpoint: str, content_encoding: str, authorization: str
) -> ReadRequest:
    """Check a request as Segment's edge does: the body unpacked, JSON, a write
    key, the size limits. Unknown write keys are not its business (Segment's
    edge is stateless): the expansion drops those events."""
    read = ReadRequest(write_key=basic_auth_user(authorization))
    encoding = content_encoding.strip().lower()
    if len(raw) > MAX_BATCH_BYTES:
        read.refusal = _over_limit(endpoint)
        return read
    if encoding == "gzip":
        data, refusal = decompress(raw, limit=MAX_BATCH_BYTES)
        if refusal is not None:
            if refusal.code == BATCH_TOO_LARGE and endpoint != BATCH:
                refusal = Refusal(
                    EVENT_TOO_LARGE,
                    DECOMPRESSED_EVENT_OVER_LIMIT.format(
                        read=MAX_BATCH_BYTES, limit=MAX_EVENT_BYTES
                    ),
                )
            read.refusal = refusal
            return read
        raw = data
    elif encoding not in ("", "identity"):
        read.refusal = Refusal(
            INVALID_JSON, UNSUPPORTED_ENCODING.format(encoding=content_encoding)
        )
        return read
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        read.refusal = Refusal(INVALID_JSON, NOT_UTF8)
        return read
    read.text = text
    body, error = parse_body(text)
    if error is not None:
        read.refusal = Refusal(INVALID_JSON, error.message)
        if not read.write_key:
            # Refused, but filed under its source when the key can be read.
            read.write_key = _loose_write_key(text)
        return read
    if not isinstance(body, dict):
        read.refusal = Refusal(INVALID_JSON, NOT_AN_OBJECT.format(kind=json_kind(body)))
        return read
    body_key = body.get("writeKey")
    if not read.write_key and isinstance(body_key, str):
        read.write_key = body_key
    if not read.write_key.strip():
        read.refusal = Refusal(NO_WRITE_KEY, WRITE_KEY_MISSING)
        return read
    if endpoint == BATCH:
        return _read_batch(read, body, size=len(raw))
    if len(raw) > MAX_EVENT_BYTES:
        size = spec.event_size({k: v for k, v in body.items() if k != "writeKey"})
        if size > MAX_EVENT_BYTES:
            read.refusal = Refusal(
                EVENT_TOO_LARGE,
                EVENT_OVER_LIMIT.format(size=size, limit=MAX_EVENT_BYTES),
            )
            return read
    read.event_count = 1
    return read


# What the C decoder alone would let through and spec.parse_json refuses, beyond
# NaN, infinite numbers and depth (checked on the way): escaped UTF-16
# surrogates (paired ones are fine). A body without them skips the slow path,
# which encodes the whole value again to check it.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def parse_body(text: str) -> tuple[object | None, spec.JsonError | None]:
    """spec.parse_json's answer, at the C decoder's speed for ordinary bodies."""
    if "\\u" not in text or _SURROGATE_ESCAPE.search(text) is None:
        try:
            value = json.loads(
                text,
                **json_text.STRICT_NUMBERS,
            )
        except (ValueError, RecursionError):
            pass
        else:
            if not isinstance(value, dict | list) or _depth_fits(value):
                return value, None
    return spec.parse_json(text)


def _depth_fits(value: object, depth: int = 1) -> bool:
    """Whether no object or array is nested deeper than spec allows. Only
    containers are visited, and recursion stops at the limit (a hundred frames
    at most); json.loads makes plain dicts and lists, so their exact types are
    tested, several times faster than isinstance for a batch's thousands of
    values."""
    if depth > spec.json_text.MAX_DEPTH:
        return False
    for child in value.values() if type(value) is dict else value:
        kind = type(child)
        if (kind is dict or kind is list) and not _depth_fits(child, depth + 1):
            return False
    return True


def _loose_write_key(text: str) -> str:
    """The body's writeKey, read leniently (NaN and lone surrogates allowed
    elsewhere in it), or "" when there is none that is clean text."""
    try:
        loose = json.loads(text)
    except (ValueError, RecursionError):
        return ""
    key = loose.get("writeKey") if isinstance(loose, dict) else None
    if not isinstance(key, str) or len(key) > 200:
        return ""
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return ""
    return key


def _over_limit(endpoint: str) -> "Refusal":
    """A body over what the door reads (only its first bytes were read)."""
    if endpoint == BATCH:
        return Refusal(BATCH_TOO_LARGE, BATCH_OVER_LIMIT.format(limit=MAX_BATCH_BYTES))
    return Refusal(
        EVENT_TOO_LARGE,
        EVENT_OVER_READ.format(read=MAX_BATCH_BYTES, limit=MAX_EVENT_BYTES),
    )


def _read_batch(read: ReadRequest, body: dict, *, size: int) -> ReadRequest:
    items = body.get("batch")
    if not isinstance(items, list):
        read.refusal = Refusal(
            INVALID_JSON, BATCH_NOT_A_LIST.format(kind=json_kind(items))
        )
        return read
    if size > MAX_EVENT_BYTES:
        # Only a body over 32 KB can hold an event over 32 KB.
        for number, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                continue
            item_size = spec.event_size(item)
            if item_size > MAX_EVENT_BYTES:
                read.refusal = Refusal(
                    EVENT_TOO_LARGE,
                    BATCH_EVENT_OVER_LIMIT.format(
                        number=number, size=item_size, limit=MAX_EVENT_BYTES
                    ),
                )
                return read
    read.event_count = len(items)
    return read


def events_of(body: object, *, endpoint: str) -> tuple[list, dict]:
    """The items a stored body carries, and the batch-level fields each takes."""
    if not isinstance(body, dict):
        return [], {}
    if endpoint != BATCH:
        return [body], {}
    items = body.get("batch")
    shared = {
        name: body[name]
        for name in ("context", "integrations", "sentAt")
        if body.get(name) is not None
    }
    return (items if isinstance(items, list) else []), shared


def item_problem(item: object, *, endpoint: str = BATCH) -> str | None:
    """Why an item is no tracking API call at all: not an object, or, in a batch
    (where the item names its own type), a type the tracking API does not take."""
    if not isinstance(item, dict):
        return ITEM_NOT_AN_EVENT.format(kind=json_kind(item))
    if endpoint != BATCH:
        return None  # the path names the type
    found = item.get("type")
    if found == "delete":
        return ITEM_DELETE
    if found is None:
        return ITEM_NO_TYPE
    if found not in CALL_TYPES:
        return ITEM_NOT_A_CALL.format(found=repr(found)[:60])
    return None


def as_arrived(item: object, *, endpoint: str) -> object:
    """An item as its client sent it, for an event dropped before it was read as
    one: no writeKey, and the type its path names (/v1/track is a track)."""
    if not isinstance(item, dict):
        return item
    shown = {k: v for k, v in item.items() if k != "writeKey"}
    if endpoint != BATCH:
        shown["type"] = path_type(endpoint)
    return shown


def path_type(endpoint: str) -> str:
    """The type a single-event path names (a /v1/track is a track); "" for a
    batch, whose items name their own."""
    return "" if endpoint == BATCH else endpoint


def prepared(item: dict, *, endpoint: str, shared: dict, client_ip: str) -> dict:
    """The event as the client meant it: batch-level context, integrations and
    sentAt applied (a sentAt that is no date left out), the type its path
    names, the caller's IP where Segment adds it, and no writeKey (Segment
    does not forward it)."""
    event = dict(item)
    event.pop("writeKey", None)
    if endpoint != BATCH:
        event["type"] = endpoint
    for name in ("context", "integrations"):
        outer = shared.get(name)
        own = event.get(name)
        if isinstance(outer, dict) and (own is None or isinstance(own, dict)):
            # The event's own values win over the batch's.
            event[name] = {**outer, **(own or {})}
    if event.get("sentAt") is None and "sentAt" in shared:
        event["sentAt"] = shared["sentAt"]
    if "sentAt" in event and spec.parse_timestamp(event["sentAt"]) is None:
        # A client clock that cannot be read (an empty sentAt is the known way
        # to keep Segment from correcting timestamps): no skew correction, as
        # without one, rather than the whole batch dropped.
        del event["sentAt"]
    context = event.get("context")
    if (
        isinstance(context, dict)
        and context.get("ip") is None
        and _collects_ip(context)
        and _is_ipv4(client_ip)
    ):
        event["context"] = {**context, "ip": client_ip}
    return event


def _collects_ip(context: dict) -> bool:
    """Segment adds the caller's IP to client-side events, and to any event
    whose context says `direct: true` (segment-reference.md 1.2)."""
    if context.get("direct") is True:
        return True
    library = context.get("library")
    name = library.get("name") if isinstance(library, dict) else None
    return name in BROWSER_LIBRARIES or name in MOBILE_LIBRARIES


def _is_ipv4(address: str) -> bool:
    # "IPv6 is not collected automatically."
    try:
        return ipaddress.ip_address(address).version == 4
    except ValueError:
        return False


def enrich(event: dict, *, received_at: datetime, project_id: str) -> dict:
    """The event as Segment forwards it: messageId kept (made if missing),
    receivedAt, originalTimestamp and the skew-corrected timestamp (sandbox.spec)."""
    return spec.normalise(event, now=received_at, project_id=project_id)


def library_name(event: object) -> str:
    context = event.get("context") if isinstance(event, dict) else None
    library = context.get("library") if isinstance(context, dict) else None
    name = library.get("name") if isinstance(library, dict) else None
    return name[:200] if isinstance(name, str) else ""
