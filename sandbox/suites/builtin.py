"""The built-in, read-only "Segment test suite": one event of every type and a
spread of the Spec's semantic events, each expected green or yellow, the bar
Segment's reviewers apply before a partner's subscription goes public (pure)."""

from sandbox.spec import EVENT_TYPES
from sandbox.suites.fileformat import DEFAULT_OUTCOMES, Expectation, Step, Suite

SEGMENT_TEST_SUITE = "Segment test suite"
# One of each Spec family, so a partner sees how their endpoint reads each.
SEMANTIC_EVENTS = (
    "Products Searched",
    "Product Viewed",
    "Product Added",
    "Checkout Started",
    "Order Completed",
    "Order Refunded",
    "Video Playback Started",
    "Application Installed",
    "Email Opened",
    "Live Chat Conversation Started",
    "Signed Up",
)
_DELIVERED = Expectation(outcomes=DEFAULT_OUTCOMES)


def segment_test_suite() -> Suite:
    # Screens come from a mobile library; everything else from analytics.js.
    types = tuple(
        Step(
            type=event_type,
            source="ios" if event_type == "screen" else None,
            name=event_type,
            expect=_DELIVERED,
        )
        for event_type in EVENT_TYPES
    )
    semantic = tuple(
        Step(template=name, name=name, expect=_DELIVERED) for name in SEMANTIC_EVENTS
    )
    return Suite(
        name=SEGMENT_TEST_SUITE,
        description=(
            "One event of every type and a spread of Segment's semantic events; "
            "every step must be green (2xx) or yellow (501, not supported) for "
            "the subscription to be ready for review."
        ),
        steps=types + semantic,
    )


BUILT_IN = {SEGMENT_TEST_SUITE: segment_test_suite}
