"""Ids no row can have (past SQLite's signed 64-bit integers) in addresses and
forms: a 404 or a 400 in the sandbox's words, never a 500."""

import io
import logging

import pytest
from django.urls import reverse

from tests.factories import make_subscription

HUGE = "99999999999999999999999"
JUST_PAST = str(2**63)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        f"/deliveries/{HUGE}/",
        f"/deliveries/{HUGE}/attempts/1/curl/",
        f"/deliveries/1/attempts/{HUGE}/curl/",
        f"/deliveries/{JUST_PAST}/",
        f"/subscriptions/{HUGE}/",
        f"/subscriptions/{HUGE}/edit/",
        f"/sources/{HUGE}/",
        f"/replays/{HUGE}/",
        f"/suites/{HUGE}/",
        f"/suites/runs/{HUGE}/",
        "/deliveries/0/",
    ],
)
def test_an_id_no_row_can_have_is_not_found(client, path):
    response = client.get(path)
    assert response.status_code == 404, path


@pytest.mark.django_db
def test_a_form_choosing_a_row_by_such_an_id_is_refused_in_words(client):
    make_subscription(name="Hook")
    response = client.post(
        reverse("sources:create"),
        {"name": "S", "write_key": "", "subscriptions": [HUGE]},
    )
    assert response.status_code == 400
    assert b"too large to name anything the sandbox stores" in response.content


@pytest.mark.django_db
def test_too_many_fields_is_refused_in_one_log_line_without_traceback(client):
    [handler] = [
        one
        for one in logging.getLogger("django.security").handlers
        if isinstance(one, logging.StreamHandler) and one.filters
    ]
    written = io.StringIO()
    before = handler.setStream(written)
    try:
        many = "&".join(f"a{n}=1" for n in range(1500))
        response = client.get(f"/history/?{many}")
    finally:
        handler.setStream(before)
    assert response.status_code == 400
    err = written.getvalue()
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
