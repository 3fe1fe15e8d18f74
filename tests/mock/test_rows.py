"""sandbox.rows reads a row as the ORM would: every field, converted alike."""

import pytest

from sandbox.mock.models import MockEndpoint
from sandbox.mock.selectors import mock_endpoint_get
from sandbox.subscriptions.models import Subscription
from sandbox.subscriptions.selectors import subscription_get_or_none
from tests.factories import make_subscription

pytestmark = pytest.mark.django_db


def _fields(instance) -> dict:
    return {
        f.attname: getattr(instance, f.attname)
        for f in type(instance)._meta.concrete_fields
    }


def test_a_subscription_read_in_one_statement_is_the_orms():
    made = make_subscription(custom_settings={"région": "eu", "n": [1, 2.5, None]})
    read = subscription_get_or_none(pk=made.pk)
    assert _fields(read) == _fields(Subscription.objects.get(pk=made.pk))
    assert read.created_at.tzinfo is not None
    assert not read._state.adding
    assert subscription_get_or_none(pk=made.pk + 1) is None


def test_a_mock_endpoint_read_in_one_statement_is_the_orms(make_mock_endpoint):
    made = make_mock_endpoint(slug="acme-2")
    read = mock_endpoint_get(slug="acme-2")
    assert _fields(read) == _fields(MockEndpoint.objects.get(pk=made.pk))
    assert mock_endpoint_get(slug="ACME-2") is None
    assert mock_endpoint_get(slug="acme") is None
