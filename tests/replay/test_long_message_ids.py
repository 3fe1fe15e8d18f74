"""messageIds longer than the delivery's column keeps (Segment allows 100; a
Spec problem, sent all the same): two that begin alike are two messages, each
deduplicated on its whole id, in the lane and through the queue alike."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from sandbox.delivery.models import Delivery, State
from sandbox.delivery.services import Target
from sandbox.replay import services
from tests.factories import make_subscription
from tests.replay.helpers import EngineThread, event, wait_until

START = "Z" * 250


def _file(tmp_path):
    ids = [START + "a", START + "b", START + "c", START + "a"]
    path = tmp_path / "long.jsonl"
    path.write_text(
        "\n".join(json.dumps(event(n, messageId=m)) for n, m in enumerate(ids))
    )
    return path


@pytest.mark.django_db(transaction=True)
def test_the_command_sends_long_ids_that_begin_alike_once_each(receiver, tmp_path):
    out = StringIO()
    call_command(
        "replay",
        str(_file(tmp_path)),
        *("--endpoint", receiver.url("/ok"), "--api-key", "k"),
        stdout=out,
        stderr=StringIO(),
    )
    got = sorted(r.json["messageId"][-1] for r in receiver.received)
    assert got == ["a", "b", "c"], got
    assert Delivery.objects.filter(state=State.DELIVERED).count() == 3
    assert "3 delivered" in out.getvalue().splitlines()[-1]


@pytest.mark.django_db(transaction=True)
def test_a_page_replay_sends_long_ids_that_begin_alike_once_each(receiver, tmp_path):
    subscription = make_subscription(name="Long", endpoint_url=receiver.url("/ok"))
    replay = services.replay_create(
        target=Target.of(subscription), path=_file(tmp_path), rate=None, concurrency=2
    )
    with EngineThread():
        services.replay_feed(replay_id=replay.pk)
        wait_until(lambda: Delivery.objects.filter(state=State.DELIVERED).count() == 3)
    got = sorted(r.json["messageId"][-1] for r in receiver.received)
    assert got == ["a", "b", "c"], got
    replay.refresh_from_db()
    assert replay.duplicates_skipped == 1
    # The same file again: each whole id is deduplicated by the subscription.
    again = services.replay_create(
        target=Target.of(subscription), path=_file(tmp_path), rate=None, concurrency=2
    )
    with EngineThread():
        services.replay_feed(replay_id=again.pk)
        wait_until(
            lambda: (
                Delivery.objects.filter(
                    run_id=again.run_id, state=State.DEDUPLICATED
                ).count()
                == 3
            )
        )
    assert len(receiver.received) == 3
