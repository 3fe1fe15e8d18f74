"""The libraries sample events come from: names, versions, messageIds and clocks.

Every fact here was read from the library's own code at the release named, or from
what that release sends (tests/spec/sdk_payloads holds recorded payloads):

- analytics.js is @segment/analytics-next 1.84.3 (npm): plugins/env-enrichment
  writes context.library.version as "next-<v>" in the CDN (snippet) bundle and
  "npm:next-<v>" when installed from npm; core/events makes messageIds
  "ajs-next-<Date.now()>-<uuid v4>"; plugins/segmentio/normalize adds _metadata
  {bundled, unbundled, bundledIds} and `userId: user.id()` (null before identify).
- analytics-swift 1.10.0 (segmentio/analytics-swift, tag 1.10.0): its
  Sources/Segment/Version.swift still says "1.9.4", and that is what it sends.
  messageId is UUID().uuidString (upper case); Plugins/Context.swift builds the
  context; there is no page call.
- analytics-kotlin 1.25.0 (segmentio/analytics-kotlin, tag 1.25.0):
  Constants.LIBRARY_VERSION is still "1.24.1". messageId is
  UUID.randomUUID().toString(); EventPipeline drops a blank userId; there is no
  page call.
- analytics-python 2.4.0 (PyPI segment-analytics-python): timestamp is
  isoformat(timespec="milliseconds") and the batch's sentAt isoformat(), both
  "+00:00"; absent ids are sent as null.
- @segment/analytics-node 3.1.0: messageId "node-next-<Date.now()>-<uuid>",
  _metadata {nodeVersion: process.version, jsRuntime: "node"}.
- analytics-node 6.2.0 (classic): messageId
  "node-<md5(JSON.stringify(message))>-<uuid>", _metadata
  {nodeVersion: process.versions.node}, no integrations unless given.
"""

import hashlib
import json
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from uuid6 import uuid7

from sandbox.spec.timestamps import as_utc, format_timestamp, parse_timestamp

BROWSER = "browser"
MOBILE = "mobile"
SERVER = "server"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The Node.js release the recorded Node payloads were made with.
NODE_VERSION = "20.20.2"


@dataclass(frozen=True)
class Library:
    """One source of sample events: the library and the release it imitates."""

    key: str  # the source's key in SOURCES, the composer and `sendevent --source`
    label: str
    name: str  # context.library.name
    version: str  # context.library.version, exactly as the release sends it
    release: str  # the package release the shapes were read from
    platform: str  # BROWSER, MOBILE or SERVER: which context the library collects

    @property
    def has_page(self) -> bool:
        # analytics-swift and analytics-kotlin have screen() and no page().
        return self.platform != MOBILE


_ANALYTICS_NEXT = "1.84.3"

LIBRARIES: dict[str, Library] = {
    library.key: library
    for library in (
        Library(
            "analytics.js",
            f"analytics.js snippet (next-{_ANALYTICS_NEXT})",
            "analytics.js",
            f"next-{_ANALYTICS_NEXT}",
            _ANALYTICS_NEXT,
            BROWSER,
        ),
        Library(
            "analytics.js-npm",
            f"analytics.js from npm (@segment/analytics-next {_ANALYTICS_NEXT})",
            "analytics.js",
            f"npm:next-{_ANALYTICS_NEXT}",
            _ANALYTICS_NEXT,
            BROWSER,
        ),
        Library(
            "ios",
            "iOS app (analytics-swift 1.10.0)",
            "analytics-swift",
            "1.9.4",
            "1.10.0",
            MOBILE,
        ),
        Library(
            "android",
            "Android app (analytics-kotlin 1.25.0)",
            "analytics-kotlin",
            "1.24.1",
            "1.25.0",
            MOBILE,
        ),
        Library(
            "server",
            "Python server (analytics-python 2.4.0)",
            "analytics-python",
            "2.4.0",
            "2.4.0",
            SERVER,
        ),
        Library(
            "node",
            "Node.js server (@segment/analytics-node 3.1.0)",
            "@segment/analytics-node",
            "3.1.0",
            "3.1.0",
            SERVER,
        ),
        Library(
            "node-classic",
            "Node.js server, classic (analytics-node 6.2.0)",
            "analytics-node",
            "6.2.0",
            "6.2.0",
            SERVER,
        ),
    )
}

# What the composer's Source select offers: key → label.
SOURCES: dict[str, str] = {key: library.label for key, library in LIBRARIES.items()}


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since 1970, as JavaScript's Date.now() gives them."""
    return (as_utc(moment) - _EPOCH) // timedelta(milliseconds=1)


def library_timestamp(source: str, moment: datetime) -> str:
    """The event's own time as the library writes it (Segment's originalTimestamp)."""
    if source == "server":
        return as_utc(moment).isoformat(timespec="milliseconds")
    return format_timestamp(moment)


def library_sent_at(source: str, moment: datetime) -> str:
    """The batch's sentAt as the library writes it."""
    if source == "server":
        # datetime.now(tz=tzutc()).isoformat(): microseconds, "+00:00".
        return as_utc(moment).isoformat()
    return format_timestamp(moment)


def javascript_json(value: object) -> str:
    """JSON.stringify's text: no spaces between tokens, non-ASCII kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_STAMPED = re.compile(rf"(?P<prefix>ajs-next-|node-next-)\d+-(?P<uuid>{_UUID})")
_NODE_CLASSIC = re.compile(rf"node-[0-9a-f]{{32}}-(?P<uuid>{_UUID})")
_AJS_CLASSIC = re.compile(r"ajs-[0-9a-f]{32}")
_DELETE_REGULATION = re.compile(r"delete-reg-\d+::job-(?P<job>\d+)-(?P<project>\w+)")
_ANY_UUID = re.compile(_UUID)


def fresh_message_id(event: object, *, now: datetime) -> str:
    """A new messageId in the format of the event's own, so a copy of an event
    reads as its library would have sent it: "ajs-next-<ms>-<uuid>" stays so
    (stamped with the copy's time), a Swift upper-case UUID stays upper case, a
    delete stays "delete-…". An id of no known format becomes a UUID, as
    Segment's API assigns one: time-ordered (version 7), so a replay's copies
    land in order in the messageId and dedupe indexes. A library's own UUIDs
    stay version 4, as the library makes them."""
    old = event.get("messageId") if isinstance(event, dict) else None
    if isinstance(old, str):
        made = _like(old, event, now)
        if made is not None:
            return made
    if isinstance(event, dict) and event.get("type") == "delete":
        return f"delete-{uuid.uuid4()}"
    return str(uuid7())


def message_id_like(event: object, *, now: datetime) -> Callable[[], str]:
    """fresh_message_id for later: only an event that needs a new id pays for it."""
    return partial(fresh_message_id, event, now=now)


def _like(old: str, event: dict, now: datetime) -> str | None:
    match = _STAMPED.fullmatch(old)
    if match:
        created = as_utc(now) - _send_delay(event)
        return f"{match['prefix']}{epoch_ms(created)}-{_uuid_as(match['uuid'])}"
    match = _NODE_CLASSIC.fullmatch(old)
    if match:
        return f"node-{_digest(event)}-{_uuid_as(match['uuid'])}"
    if _AJS_CLASSIC.fullmatch(old):
        return f"ajs-{md5_hex(_digest(event) + str(uuid.uuid4()))}"
    match = _DELETE_REGULATION.fullmatch(old)
    if match:
        regulation = 1_000_000 + secrets.randbelow(9_000_000)
        return f"delete-reg-{regulation}::job-{match['job']}-{match['project']}"
    if _ANY_UUID.search(old):
        return _ANY_UUID.sub(lambda found: _uuid_as(found[0]), old)
    return None


def _uuid_as(old: str) -> str:
    new = str(uuid.uuid4())
    return new.upper() if old.isupper() else new


def _digest(event: dict) -> str:
    return md5_hex(
        javascript_json({k: v for k, v in event.items() if k != "messageId"})
    )


def _send_delay(event: dict) -> timedelta:
    # A copy keeps the event's delay between its creation and its send, so the
    # time in the id is the copy's originalTimestamp (see normalise).
    original = event.get("originalTimestamp")
    created = parse_timestamp(event.get("timestamp") if original is None else original)
    sent = parse_timestamp(event.get("sentAt"))
    if created is None or sent is None:
        return timedelta(0)
    return sent - created
