"""The replay page's form, its delete door and the replay command with hostile
values: a specific refusal each time, never a 500, and no replay stored for what
is refused."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from sandbox.delivery.services import Target
from sandbox.replay import services
from sandbox.replay.models import Replay
from tests.factories import make_subscription

HUGE = "9" * 400
VALUES = {
    "rate": ["NaN", "inf", "-1", HUGE, "1e400", "1e-300", "0.0001", "<script>", "\x00"],
    "concurrency": ["0", "-5", HUGE, "1.5", "abc", "100000"],
    "since": ["0001-01-01T00:00", "9999-12-31T23:59", "yesterday", "\x00"],
    "until": ["9999-12-31T23:59:59", "2024-13-45T99:99"],
    "event_name": ["x" * 10_000, "\\ud800", "nul\x00inside"],
    "source": ["ingested", "nothing", "", "\x00", "<script>"],
    "from_source": ["1", "999999", "-1", HUGE, "abc", "\x00"],
    "from_subscription": ["999999", HUGE, "abc"],
}
CASES = [(field, value) for field, values in VALUES.items() for value in values]


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value"), CASES, ids=range(len(CASES)))
def test_the_replay_form_answers_every_value_without_a_500(client, field, value):
    subscription = make_subscription(name="Hostile hook")
    data = {
        "source": "history",
        "subscription": str(subscription.pk),
        "rate": "",
        "concurrency": "5",
        field: value,
    }
    response = client.post(reverse("replay:start"), data)
    assert response.status_code in {302, 400}, response.content[:300]
    if response.status_code == 400:
        assert not Replay.objects.exists()
        assert b"<script>" not in response.content.split(b"</head>")[1]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [
        ["--rate", "NaN"],
        ["--rate", "-3"],
        ["--rate", "1e-300"],
        ["--rate", "1e-12"],
        ["--rate", "0.0009"],
        ["--concurrency", "0"],
        ["--concurrency", HUGE],
        ["--time-scale", "inf"],
    ],
)
def test_the_replay_command_refuses_bad_numbers_with_exit_2(tmp_path, args):
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "track", "event": "x", "userId": "u"}\n')
    target = ["--endpoint", "http://127.0.0.1:9/", "--api-key", "k"]
    with pytest.raises(CommandError) as refused:
        call_command("replay", str(path), *target, *args)
    assert refused.value.returncode == 2
    assert not Replay.objects.exists()


JUNK_BODIES = [
    {"confirm": "\x00"},
    {"confirm": HUGE, "pk": "-1"},
    {"csrfmiddlewaretoken": "<script>"},
    {"x": "\\ud800" * 100},
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("body", JUNK_BODIES, ids=range(len(JUNK_BODIES)))
def test_the_replay_delete_door_answers_junk_without_a_500(client, body, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "track", "event": "x", "userId": "u"}\n')
    subscription = make_subscription(name="Hostile hook")
    replay = services.replay_create(target=Target.of(subscription), path=path)
    delete = reverse("replay:delete", args=[replay.pk])
    for headers in ({}, {"HX-Request": "true", "HX-Target": "<img src=x>"}):
        assert client.post(delete, body, headers=headers).status_code in {200, 302, 404}
    assert not Replay.objects.exists()
    assert path.exists()
    for url in (delete, "/replays/99999999999999999999/delete/", "/replays/-1/delete/"):
        assert client.post(url, body).status_code == 404
        assert client.get(url).status_code in {404, 405}
