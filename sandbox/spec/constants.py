"""The fixed vocabulary of Segment's Spec: call types and size limits.

The sample sources (SOURCES) are in sandbox.spec.sources, with their libraries.
"""

EVENT_TYPES: tuple[str, ...] = (
    "identify",
    "track",
    "page",
    "screen",
    "group",
    "alias",
    "delete",
)

# Segment rejects a single event over 32 KB; the SDKs count a KB as 1,024 bytes.
MAX_EVENT_BYTES = 32 * 1024
# Segment dedupes on messageId and documents 100 characters as its maximum length.
MAX_MESSAGE_ID_LENGTH = 100

# What Segment's pipeline adds to an event that lacks it (segment-reference.md 1.1).
# projectId is the source's id; the sandbox's events all come from one source.
SANDBOX_PROJECT_ID = "SandboxSrc"
# The Tracking API version on events delivered to partners (partners/spec.md).
TRACKING_API_VERSION = 2
# context.library.name of the libraries whose events Segment gives channel
# "client" (analytics.js, as in every delivered example of partners/spec.md) and
# "mobile" (common.md's list of channels); any other library's events, and
# events from no library (the HTTP API), get "server".
BROWSER_LIBRARIES = frozenset({"analytics.js"})
MOBILE_LIBRARIES = frozenset(
    {
        "analytics-ios",
        "analytics-android",
        "analytics-swift",
        "analytics-kotlin",
        "analytics-react-native",
        "@segment/analytics-react-native",
        "analytics-flutter",
    }
)
