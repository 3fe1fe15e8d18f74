"""queue.stamp_of makes the text Django's SQLite backend makes for a datetime,
without its look-ups; stored and read back, the moment is the same."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from sandbox.delivery import queue
from sandbox.delivery.models import Delivery
from tests.factories import make_delivery, make_subscription

MOMENTS = [
    datetime(2026, 11, 28, 21, 3, 35, 940594, tzinfo=UTC),
    datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    datetime(2024, 1, 2, 3, 4, 5, tzinfo=ZoneInfo("UTC")),
    datetime(2024, 1, 2, 3, 4, 5, 123, tzinfo=ZoneInfo("Europe/Paris")),
    datetime(2024, 7, 2, 3, 4, 5, 999999, tzinfo=ZoneInfo("America/New_York")),
    datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5))),
    datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=timezone(timedelta(minutes=330))),
    datetime(2024, 1, 1),
    None,
]


@pytest.mark.django_db
@pytest.mark.parametrize("moment", MOMENTS, ids=str)
def test_the_text_is_djangos(moment):
    assert queue.stamp_of(moment) == connection.ops.adapt_datetimefield_value(moment)


@pytest.mark.django_db
def test_a_stored_stamp_reads_back_as_the_same_moment():
    delivery = make_delivery(subscription=make_subscription())
    moment = datetime(2024, 7, 2, 3, 4, 5, 999999, tzinfo=ZoneInfo("America/New_York"))
    queue.rows(
        f"UPDATE {Delivery._meta.db_table} SET next_attempt_at = %s WHERE id = %s",
        [queue.stamp_of(moment), delivery.pk],
    )
    assert Delivery.objects.get(pk=delivery.pk).next_attempt_at == moment
    assert Delivery.objects.filter(next_attempt_at=moment).count() == 1
