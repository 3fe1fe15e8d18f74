"""`manage.py seed_demo`: the demo subscription and its mock endpoint, once."""

import pytest
from django.core.management import CommandError, call_command

from sandbox.mock.selectors import mock_endpoint_get
from sandbox.subscriptions.selectors import subscription_get_by_name
from sandbox.subscriptions.services import subscription_update
from sandbox.tester.management.commands.seed_demo import DEMO_NAME, DEMO_SLUG

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_the_subscription_and_its_endpoint(settings, capsys):
    settings.BASE_URL = "http://127.0.0.1:8123"
    call_command("seed_demo")
    subscription = subscription_get_by_name(name=DEMO_NAME)
    assert subscription.endpoint_url == f"http://127.0.0.1:8123/mock/{DEMO_SLUG}/"
    assert subscription.custom_settings["workspace"] == "acme-demo"
    assert mock_endpoint_get(slug=DEMO_SLUG) is not None
    assert "Created" in capsys.readouterr().out


def test_seed_demo_again_keeps_the_users_edits(capsys):
    call_command("seed_demo")
    subscription = subscription_get_by_name(name=DEMO_NAME)
    subscription_update(subscription=subscription, time_scale=240)
    call_command("seed_demo")
    assert subscription_get_by_name(name=DEMO_NAME).time_scale == 240
    assert "kept as it is" in capsys.readouterr().out


def test_seed_demo_with_an_unusable_base_url_exits_2(settings):
    settings.BASE_URL = "localhost:8000"
    with pytest.raises(CommandError) as refused:
        call_command("seed_demo")
    assert refused.value.returncode == 2
    assert "must start with http:// or https://" in str(refused.value)
    assert mock_endpoint_get(slug=DEMO_SLUG) is None
