"""The fixed vocabulary of Segment's Spec: call types, sample sources, size limits."""

EVENT_TYPES: tuple[str, ...] = (
    "identify",
    "track",
    "page",
    "screen",
    "group",
    "alias",
    "delete",
)

SOURCES: dict[str, str] = {
    "analytics.js": "analytics.js in a browser",
    "ios": "iOS app (analytics-swift)",
    "android": "Android app (analytics-kotlin)",
    "server": "Server library (analytics-python)",
}

# Segment rejects a single event over 32 KB; the SDKs count a KB as 1,024 bytes.
MAX_EVENT_BYTES = 32 * 1024
# Segment dedupes on messageId and documents 100 characters as its maximum length.
MAX_MESSAGE_ID_LENGTH = 100
