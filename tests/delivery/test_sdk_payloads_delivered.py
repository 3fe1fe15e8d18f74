"""Recorded SDK events go through the pipeline unforced and arrive as Segment
delivers them: what the library sent, kept, and what Segment adds, added."""

import json
from pathlib import Path

import pytest

from sandbox.delivery import services
from sandbox.delivery.models import Delivery, Door, State
from sandbox.spec import MAX_EVENT_BYTES, parse_timestamp
from sandbox.spec.constants import SANDBOX_PROJECT_ID
from tests.factories import make_subscription

pytestmark = pytest.mark.django_db(transaction=True)

CORPUS = Path(__file__).parent.parent / "spec" / "sdk_payloads"
PAYLOADS = sorted(p for p in CORPUS.glob("*/*.json") if p.parent.name != "record")
SET_BY_SEGMENT = {"receivedAt", "timestamp", "originalTimestamp"}


def test_recorded_sdk_events_are_delivered_without_force(receiver, deliver_due):
    events = [json.loads(path.read_text(encoding="utf-8")) for path in PAYLOADS]
    subscription = make_subscription(endpoint_url=receiver.url("/ok"))
    stored = services.deliveries_enqueue(
        target=services.Target.of(subscription), events=events, door=Door.COMPOSER
    )
    assert [delivery.spec_problems for delivery in stored] == [[]] * len(events)
    assert deliver_due() == len(events)
    assert set(Delivery.objects.values_list("state", flat=True)) == {State.DELIVERED}
    bodies = {r.json["messageId"]: r for r in receiver.received}
    for event in events:
        received = bodies[event["messageId"]]
        delivered = received.json
        for name, value in event.items():
            if name not in SET_BY_SEGMENT:
                assert delivered[name] == value, name
        assert delivered["projectId"] == SANDBOX_PROJECT_ID
        assert delivered["channel"] == "server"
        assert delivered["version"] == 2
        assert parse_timestamp(delivered["receivedAt"]) is not None
        if event["type"] in ("group", "alias"):
            # Passed on as numbers, as Segment does.
            assert delivered.get("groupId", delivered.get("previousId")) in (999, 111)
    # The largest events went out over 32 KB: Segment's additions are not counted.
    assert sum(len(r.body) > MAX_EVENT_BYTES for r in receiver.received) == 3


@pytest.mark.parametrize("as_new", [False, True])
def test_a_resent_event_keeps_the_problems_of_its_first_send(as_new):
    # The largest recorded event is under 32 KB as sent, over it as stored.
    path = max(PAYLOADS, key=lambda p: p.stat().st_size)
    subscription = make_subscription()
    first = services.delivery_enqueue(
        target=services.Target.of(subscription),
        event=json.loads(path.read_text(encoding="utf-8")),
        door=Door.COMPOSER,
    )
    assert len(json.dumps(first.payload).encode()) > MAX_EVENT_BYTES
    again = services.delivery_resend(delivery=first, as_new=as_new)
    assert again.spec_problems == first.spec_problems == []


def _event_of_size(size: int, *, fresh_fields: dict) -> dict:
    """A track event of exactly `size` bytes as the client sends it (compact
    UTF-8 JSON), carrying members Segment's pipeline replaces."""
    event = {"type": "track", "event": "Sized", "userId": "ü-1", **fresh_fields}
    event["properties"] = {"pad": ""}
    short = len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())
    event["properties"]["pad"] = "é" * ((size - short) // 2) + "x" * (
        (size - short) % 2
    )
    assert (
        len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())
        == size
    )
    return event


@pytest.mark.parametrize("fresh", [False, True])
@pytest.mark.parametrize(
    "replaced",
    [
        {},
        # The client's own receivedAt (long, here) is replaced by Segment's.
        {"receivedAt": "r" * 900, "messageId": "m-1"},
        {"sentAt": "2026-01-01T00:00:01.000Z", "timestamp": "2026-01-01T00:00:00Z"},
    ],
)
def test_the_32_kb_limit_counts_what_the_client_sent_whatever_segment_changes(
    fresh, replaced
):
    """The bulk door measures an event from its delivered form, taking off what
    normalise() added or replaced: the limit falls exactly where it falls on
    the client's own bytes (less a top-level sentAt, which the libraries send
    once per batch)."""
    target = services.Target.of(make_subscription())
    allowance = 0
    if "sentAt" in replaced:
        allowance = len(',"sentAt":"2026-01-01T00:00:01.000Z"')
    at_limit = _event_of_size(MAX_EVENT_BYTES + allowance, fresh_fields=replaced)
    over = _event_of_size(MAX_EVENT_BYTES + allowance + 1, fresh_fields=replaced)
    [stored] = services.deliveries_enqueue(
        target=target, events=[at_limit], door=Door.CLI, fresh=fresh
    )
    assert stored.spec_problems == []
    with pytest.raises(services.SpecRejected) as rejected:
        services.deliveries_enqueue(
            target=target, events=[over], door=Door.CLI, fresh=fresh
        )
    assert [p.code for p in rejected.value.problems] == ["too_large"]
