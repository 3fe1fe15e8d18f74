"""`manage.py source` and `manage.py subscription`: what they print and their
exit codes (0 done, 2 bad input), as scripts and CI use them."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sandbox.sources.models import Source
from sandbox.subscriptions.models import Subscription
from tests.factories import make_subscription
from tests.server import ROOT

pytestmark = pytest.mark.django_db


def _call(*args: str) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().splitlines()


def _refused(*args: str) -> CommandError:
    with pytest.raises(CommandError) as refused:
        call_command(*args, stdout=StringIO())
    return refused.value


def test_source_create_prints_the_write_key_alone_on_the_last_line():
    make_subscription(name="Hook")
    lines = _call("source", "create", "Web", "--to", "Hook")
    source = Source.objects.get(name="Web")
    assert lines == ["Created source 'Web' → Hook", source.write_key]
    assert len(source.write_key) == 32


def test_source_create_with_an_existing_name_updates_it():
    make_subscription(name="One")
    make_subscription(name="Two")
    _call("source", "create", "Web", "--to", "One", "--write-key", "wk-1")
    lines = _call("source", "create", "Web", "--to", "One", "--to", "Two")
    assert lines == ["Updated source 'Web' → One, Two", "wk-1"]
    source = Source.objects.get(name="Web")
    assert {s.name for s in source.subscriptions.all()} == {"One", "Two"}
    assert _call("source", "create", "Web", "--to", "Two", "--write-key", "wk-2")[
        -1
    ] == ("wk-2")


def test_source_create_quiet_prints_only_the_key():
    make_subscription(name="Hook")
    assert _call(
        "source", "create", "Web", "--to", "Hook", "-v", "0", "--write-key", "k"
    ) == ["k"]


def test_source_create_with_an_unknown_subscription_exits_2():
    make_subscription(name="Hook")
    refused = _refused("source", "create", "Web", "--to", "Nope")
    assert refused.returncode == 2
    assert str(refused) == "No subscription named 'Nope'. Known: 'Hook'."
    assert not Source.objects.exists()


def test_source_create_with_a_taken_write_key_exits_2():
    make_subscription(name="Hook")
    _call("source", "create", "A", "--to", "Hook", "--write-key", "same")
    refused = _refused("source", "create", "B", "--to", "Hook", "--write-key", "same")
    assert refused.returncode == 2
    assert "Another source already has this write key." in str(refused)


def test_source_list_masks_keys_unless_asked():
    make_subscription(name="Hook")
    _call("source", "create", "Web", "--to", "Hook", "--write-key", "abcdefgh12345678")
    masked = _call("source", "list")
    assert masked[0].split() == ["name", "write", "key", "subscriptions"]
    assert masked[1].split() == ["Web", "••••••••5678", "Hook"]
    shown = _call("source", "list", "--show-keys")
    assert shown[1].split() == ["Web", "abcdefgh12345678", "Hook"]


def test_source_list_without_sources_says_how_to_make_one():
    assert _call("source", "list") == [
        "No sources. Create one: manage.py source create NAME --to SUBSCRIPTION"
    ]


def test_subscription_create_then_update_by_name():
    lines = _call(
        "subscription",
        "create",
        "Hook",
        "--endpoint",
        "http://127.0.0.1:9/a",
        "--api-key",
        "k1",
        "--custom-settings",
        '{"region": "eu"}',
    )
    assert lines == ["Created subscription 'Hook' → http://127.0.0.1:9/a"]
    lines = _call(
        "subscription",
        "create",
        "Hook",
        "--endpoint",
        "http://127.0.0.1:9/b",
        "--api-key",
        "k2",
    )
    assert lines == ["Updated subscription 'Hook' → http://127.0.0.1:9/b"]
    hook = Subscription.objects.get(name="Hook")
    assert (hook.endpoint_url, hook.api_key) == ("http://127.0.0.1:9/b", "k2")
    # Settings not given are kept.
    assert hook.custom_settings == {"region": "eu"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--endpoint", "ftp://x", "--api-key", "k"],
            "--endpoint 'ftp://x': The endpoint URL must start with http:// or "
            "https://",
        ),
        (
            [
                "--endpoint",
                "http://127.0.0.1:9/",
                "--api-key",
                "k",
                "--custom-settings",
                "[1]",
            ],
            "--settings: Custom settings must be a JSON object of key → value pairs",
        ),
        (
            [
                "--endpoint",
                "http://127.0.0.1:9/",
                "--api-key",
                "k",
                "--custom-settings",
                "{nope",
            ],
            "--settings: Invalid JSON at line 1, column 2",
        ),
    ],
    ids=["url", "settings-not-object", "settings-not-json"],
)
def test_subscription_create_bad_input_exits_2(args, message):
    refused = _refused("subscription", "create", "Hook", *args)
    assert refused.returncode == 2
    assert str(refused).startswith(message)
    assert not Subscription.objects.exists()


@pytest.mark.slow
def test_the_commands_exit_codes_from_a_terminal(tmp_path):
    """Real processes: `--settings JSON` reaches the command, exit codes are real."""
    from tests.server import Server

    server = Server(tmp_path)
    server.manage("migrate", "-v0")
    made = server.manage(
        "subscription",
        "create",
        "Hook",
        "--endpoint",
        "http://127.0.0.1:9/",
        "--api-key",
        "k",
        "--settings",
        json.dumps({"a": 1}),
    )
    assert made.returncode == 0
    created = server.manage("source", "create", "Web", "--to", "Hook")
    assert created.returncode == 0
    key = created.stdout.splitlines()[-1]
    listed = server.manage("source", "list", "--show-keys")
    assert key in listed.stdout
    bad = server.manage("source", "create", "Web", "--to", "Nope", check=False)
    assert bad.returncode == 2
    assert "No subscription named 'Nope'" in bad.stderr
    assert (ROOT / "manage.py").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["source", "list"],
        [
            "subscription",
            "create",
            "A",
            "--endpoint",
            "http://127.0.0.1:9/",
            "--api-key",
            "k",
        ],
        ["sendevent", "track", "--endpoint", "http://127.0.0.1:9/", "--api-key", "k"],
        ["seed_demo"],
    ],
    ids=["source", "subscription", "sendevent", "seed_demo"],
)
def test_a_command_before_migrate_says_so_without_a_traceback(tmp_path, command):
    from tests.server import Server

    ran = Server(tmp_path).manage(*command, check=False)
    assert ran.returncode == 2
    assert "is not set up yet: run `make migrate`" in ran.stderr
    assert "Traceback" not in ran.stderr


@pytest.mark.parametrize("key", ["ab/cd", "ab:cd", "a b", "k?x", "k#x", "k%2F"])
def test_a_write_key_no_sdk_could_send_is_refused(key):
    make_subscription(name="Hook")
    refused = _refused("source", "create", "Web", "--to", "Hook", "--write-key", key)
    assert refused.returncode == 2
    assert "may hold only letters, digits" in str(refused)
    assert not Source.objects.exists()


def test_source_create_names_a_subscription_given_twice_once():
    make_subscription(name="Hook")
    lines = _call("source", "create", "Web", "--to", "Hook", "--to", "Hook")
    assert lines[0] == "Created source 'Web' → Hook"
