"""`manage.py seed_demo`: the demo subscription and its mock endpoint, once."""

import pytest
from django.core.management import CommandError, call_command

from sandbox.mock.selectors import mock_endpoint_get
from sandbox.subscriptions.selectors import subscription_get_by_name
from sandbox.subscriptions.services import subscription_update
from sandbox.tester.management.commands.seed_demo import DEMO_NAME, DEMO_SLUG
from tests.server import Server


@pytest.mark.django_db
def test_seed_demo_creates_the_subscription_and_its_endpoint(settings, capsys):
    settings.BASE_URL = "http://127.0.0.1:8123"
    call_command("seed_demo")
    subscription = subscription_get_by_name(name=DEMO_NAME)
    assert subscription.endpoint_url == f"http://127.0.0.1:8123/mock/{DEMO_SLUG}/"
    assert subscription.custom_settings["workspace"] == "acme-demo"
    assert mock_endpoint_get(slug=DEMO_SLUG) is not None
    assert "Created" in capsys.readouterr().out


@pytest.mark.django_db
def test_seed_demo_again_keeps_the_users_edits(capsys):
    call_command("seed_demo")
    subscription = subscription_get_by_name(name=DEMO_NAME)
    subscription_update(subscription=subscription, time_scale=240)
    call_command("seed_demo")
    assert subscription_get_by_name(name=DEMO_NAME).time_scale == 240
    assert "kept as it is" in capsys.readouterr().out


@pytest.mark.django_db
def test_seed_demo_with_an_unusable_base_url_exits_2(settings):
    settings.BASE_URL = "localhost:8000"
    with pytest.raises(CommandError) as refused:
        call_command("seed_demo")
    assert refused.value.returncode == 2
    assert "must start with http:// or https://" in str(refused.value)
    assert mock_endpoint_get(slug=DEMO_SLUG) is None


@pytest.mark.django_db
def test_seed_demo_on_another_port_moves_the_demo_with_the_sandbox(settings, capsys):
    settings.BASE_URL = "http://127.0.0.1:8000"
    call_command("seed_demo")
    settings.BASE_URL = "http://127.0.0.1:8001"
    call_command("seed_demo")
    subscription = subscription_get_by_name(name=DEMO_NAME)
    assert subscription.endpoint_url == "http://127.0.0.1:8001/mock/demo/"
    assert capsys.readouterr().out.splitlines()[-1] == (
        "'Demo subscription' now points at the sandbox where it is served: "
        "http://127.0.0.1:8000/mock/demo/ → http://127.0.0.1:8001/mock/demo/"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "old",
    [
        "http://localhost:8000/mock/demo/",
        "http://[::1]:8000/mock/demo/",
        "http://0.0.0.0:8000/mock/demo/",
        "http://127.0.0.1:8000/mock/demo/",
    ],
)
def test_seed_demo_moves_any_local_demo_mock_url(settings, old):
    settings.BASE_URL = "http://127.0.0.1:8000"
    call_command("seed_demo")
    subscription = subscription_get_by_name(name=DEMO_NAME)
    subscription_update(subscription=subscription, endpoint_url=old)
    settings.BASE_URL = "http://127.0.0.1:9000"
    call_command("seed_demo")
    assert subscription_get_by_name(name=DEMO_NAME).endpoint_url == (
        "http://127.0.0.1:9000/mock/demo/"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "elsewhere",
    [
        "http://localhost:3000/segment",
        "http://127.0.0.1:8000/mock/other/",
        "http://127.0.0.1:8000/mock/demo/extra",
        "http://127.0.0.1:8000/mock/demo/?fail=1",
        "https://partner.example/mock/demo/",
        "http://10.0.0.7:8000/mock/demo/",
    ],
)
def test_seed_demo_leaves_a_demo_the_user_pointed_elsewhere(
    settings, capsys, elsewhere
):
    settings.BASE_URL = "http://127.0.0.1:8000"
    call_command("seed_demo")
    subscription = subscription_get_by_name(name=DEMO_NAME)
    subscription_update(subscription=subscription, endpoint_url=elsewhere)
    settings.BASE_URL = "http://127.0.0.1:8001"
    call_command("seed_demo")
    assert subscription_get_by_name(name=DEMO_NAME).endpoint_url == elsewhere
    assert capsys.readouterr().out.splitlines()[-1] == (
        "'Demo subscription' already exists; kept as it is."
    )


@pytest.mark.django_db
def test_seed_demo_on_the_same_port_keeps_the_users_edits(settings):
    settings.BASE_URL = "http://127.0.0.1:8000"
    call_command("seed_demo")
    subscription = subscription_get_by_name(name=DEMO_NAME)
    subscription_update(subscription=subscription, time_scale=60, api_key="mine")
    settings.BASE_URL = "http://127.0.0.1:8001"
    call_command("seed_demo")
    moved = subscription_get_by_name(name=DEMO_NAME)
    assert moved.endpoint_url == "http://127.0.0.1:8001/mock/demo/"
    assert (moved.time_scale, moved.api_key) == (60, "mine")


@pytest.mark.slow
def test_make_run_on_a_new_port_keeps_the_first_send_green(tmp_path):
    """`make run` then `make run PORT=B`: the demo's Send reaches the mock on B."""
    first = Server(tmp_path)
    first.prepare()
    second = Server(tmp_path)
    assert second.port != first.port
    second.manage("seed_demo")
    second.start()
    try:
        sent = second.manage(
            "sendevent", "Order Completed", "--to", DEMO_NAME, check=False
        )
    finally:
        second.stop()
    assert sent.returncode == 0, sent.stdout + sent.stderr
    lines = sent.stdout.splitlines()
    assert lines[0] == f"POST {second.url}/mock/{DEMO_SLUG}/"
    assert lines[1].startswith("200 · ") and lines[1].endswith(" · green")
