"""How the sandbox serves: DEBUG off, static files, its own error pages, request
guards, the secret key and the database settings."""

import json
import logging
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.messages import constants
from django.contrib.messages.storage.base import Message
from django.contrib.messages.storage.cookie import CookieStorage
from django.http import HttpRequest
from django.template.loader import get_template
from django.test import Client, override_settings
from django.urls import include, path
from django.utils.html import escape

from sandbox.delivery.models import Delivery
from sandbox.middleware import BODY_TOO_LARGE, FORM_NOT_UTF8
from tests.factories import make_subscription
from tests.server import Server

ROOT = Path(__file__).resolve().parents[1]
# The key every install shared before keys were generated per data directory.
OLD_FIXED_KEY = "sandbox-local-development-key-change-me-for-shared-servers"
URLENCODED = "application/x-www-form-urlencoded"
THREE_MB = 3 * 1024 * 1024
FORM_URLS = ["/send/", "/subscriptions/new/", "/mocks/new/"]
LEAKED_KEY = "live-key-that-must-stay-secret-8642"


def _boom(request):
    api_key = LEAKED_KEY  # noqa: F841 - a technical error page would show it
    raise RuntimeError("the view failed")


# The sandbox's own URLs plus one view that fails, to see a real 500 as users would.
urlpatterns = [path("boom/", _boom), path("", include("sandbox.urls"))]


def _run_settings(code: str, data_dir: Path, *, setup: bool = True, **env: str) -> str:
    """Run `code` in a fresh process once the sandbox's settings are loaded (and
    Django set up, unless `setup` is False)."""
    clean = {
        name: value
        for name, value in os.environ.items()
        if name not in {"SANDBOX_DEBUG", "SANDBOX_SECRET_KEY", "SECRET_KEY"}
        and name != "DATABASE_URL"
    }
    if setup:
        script = "import django\ndjango.setup()\nfrom django.conf import settings\n"
    else:
        script = "from sandbox import settings\n"
    result = subprocess.run(
        [sys.executable, "-c", script + code],
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "sandbox.settings",
            "SANDBOX_DATA_DIR": str(data_dir),
            **env,
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def _big_form() -> bytes:
    return b"payload=" + b"x" * THREE_MB


# DEBUG and the error pages


@pytest.mark.slow
def test_debug_is_off_unless_asked_for(tmp_path):
    assert _run_settings("print(settings.DEBUG)", tmp_path) == "False"
    assert _run_settings("print(settings.DEBUG)", tmp_path, SANDBOX_DEBUG="1") == (
        "True"
    )


def test_server_error_page_needs_no_context():
    html = get_template("500.html").render()
    assert "Something went wrong" in html
    assert "/static/sandbox/sandbox.css" in html


@pytest.mark.django_db
@override_settings(ROOT_URLCONF=__name__)
def test_a_failing_view_shows_the_sandbox_page_and_no_secret(caplog):
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.get("/boom/")
    assert response.status_code == 500
    assert "The sandbox failed while handling this request." in response.text
    assert LEAKED_KEY not in response.text
    assert "Traceback" not in response.text
    # The traceback is for the console, which has it.
    assert "RuntimeError: the view failed" in caplog.text
    assert LEAKED_KEY not in caplog.text


@pytest.mark.django_db
def test_not_found_page_says_what_was_not_found(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "There is no page at /no/such/page/" in response.text
    assert 'href="/"' in response.text


@pytest.mark.django_db
def test_not_found_page_repeats_our_own_reason(client):
    response = client.get("/subscriptions/999999/edit/")
    assert response.status_code == 404
    assert "No such subscription" in response.text


@pytest.mark.django_db
def test_missing_csrf_token_gets_the_sandbox_page():
    response = Client(enforce_csrf_checks=True).post("/subscriptions/new/", {})
    assert response.status_code == 403
    assert "This page is out of date" in response.text
    assert "CSRF verification failed" not in response.text


# Static files through WhiteNoise, with DEBUG off


@pytest.mark.django_db
def test_pages_load_their_scripts_and_styles_with_debug_off(client):
    assert settings.DEBUG is False
    html = client.get("/").text
    # django-htmx adds its debug error handler only with DEBUG on.
    assert "django-htmx.js" not in html
    for url in [
        "/static/sandbox/sandbox.css",
        "/static/sandbox/sandbox.js",
        "/static/django_htmx/htmx-2.min.js",
        "/static/django_htmx/ext/hx-ws-2.min.js",
    ]:
        assert f'"{url}"' in html
        response = client.get(url)
        body = b"".join(response.streaming_content)
        response.close()
        assert response.status_code == 200, url
        assert body


@pytest.mark.slow
def test_a_real_server_serves_static_files_and_refuses_oversized_bodies(tmp_path):
    server = Server(tmp_path)
    server.env.pop("SANDBOX_DEBUG", None)
    server.start()
    try:
        for url in ["/static/sandbox/sandbox.css", "/static/django_htmx/htmx-2.min.js"]:
            with urllib.request.urlopen(server.url + url, timeout=10) as response:
                assert response.status == 200
                assert response.read()
        oversized = urllib.request.Request(
            server.url + "/mock/demo/",
            data=b"x" * THREE_MB,
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(oversized, timeout=10)
        assert refused.value.code == 413
        assert json.loads(refused.value.read())["message"].startswith(
            f"Body of {THREE_MB} bytes is over the mock's 2.5 MB limit"
        )
        refused.value.close()
        # The body reaches the application as it came: the server itself does
        # not parse form bodies (Twisted would refuse this one with a bare 400).
        not_multipart = urllib.request.Request(
            server.url + "/mock/demo/",
            data=b'{"type": "track"}',
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        )
        try:
            answer = urllib.request.urlopen(not_multipart, timeout=10)
        except urllib.error.HTTPError as error:
            answer = error
        with answer:
            assert "message" in json.loads(answer.read())
    finally:
        server.stop()
    stored = server.query("SELECT response_status FROM mock_mockrequest ORDER BY id")
    assert len(stored) == 2
    assert stored[0] == (413,)


# The request guard


@pytest.mark.django_db
@pytest.mark.parametrize("htmx", [True, False])
def test_oversized_form_is_refused_in_our_words(client, htmx):
    make_subscription()
    before = Delivery.objects.count()
    headers = {"HX-Request": "true"} if htmx else {}
    response = client.generic(
        "POST", "/send/", _big_form(), content_type=URLENCODED, headers=headers
    )
    message = BODY_TOO_LARGE.format(size="3 MB", limit="2.5 MB")
    assert response.status_code == 413
    if htmx:
        assert response["Content-Type"] == "text/plain"
        assert response.text == message
    else:
        assert escape(message) in response.text
    assert Delivery.objects.count() == before


@pytest.mark.django_db
def test_oversized_form_is_refused_before_the_csrf_check():
    response = Client(enforce_csrf_checks=True).generic(
        "POST", "/send/", _big_form(), content_type=URLENCODED
    )
    assert response.status_code == 413


@pytest.mark.django_db
@pytest.mark.parametrize("url", FORM_URLS)
@pytest.mark.parametrize("charset", ["foo", "utf-16", "latin-1"])
def test_form_in_another_charset_is_refused(client, url, charset):
    content_type = f"{URLENCODED}; charset={charset}"
    response = client.generic("POST", url, b"name=x", content_type=content_type)
    assert response.status_code == 400
    assert escape(FORM_NOT_UTF8.format(charset=charset)) in response.text


@pytest.mark.django_db
@pytest.mark.parametrize("url", FORM_URLS)
def test_multipart_form_in_another_charset_is_refused_over_htmx(client, url):
    response = client.generic(
        "POST",
        url,
        b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n',
        content_type="multipart/form-data; boundary=x; charset=foo",
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 400
    assert response.text == FORM_NOT_UTF8.format(charset="foo")


@pytest.mark.django_db
@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8"])
def test_form_declared_as_utf8_is_read(client, charset):
    content_type = f"{URLENCODED}; charset={charset}"
    response = client.generic(
        "POST", "/validate/", b"payload=%7B%7D", content_type=content_type
    )
    assert response.status_code == 200


# The secret key


@pytest.mark.slow
def test_secret_key_is_generated_once_per_data_directory(tmp_path):
    first = _run_settings("print(settings.SECRET_KEY)", tmp_path)
    key_file = tmp_path / "secret_key"
    assert key_file.read_text() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first) >= 50
    assert first != OLD_FIXED_KEY
    assert _run_settings("print(settings.SECRET_KEY)", tmp_path) == first
    other = tmp_path / "other"
    assert _run_settings("print(settings.SECRET_KEY)", other) != first


@pytest.mark.slow
def test_secret_key_from_the_environment_wins(tmp_path):
    for name in ("SANDBOX_SECRET_KEY", "SECRET_KEY"):
        printed = _run_settings(
            "print(settings.SECRET_KEY)", tmp_path, **{name: "from-env-" + name}
        )
        assert printed == "from-env-" + name
    assert not (tmp_path / "secret_key").exists()


def _messages_cookie(text: str) -> str:
    storage = CookieStorage(HttpRequest())
    return storage._encode([Message(constants.SUCCESS, text)])


@pytest.mark.django_db
def test_messages_signed_with_the_old_fixed_key_are_refused(client):
    assert settings.SECRET_KEY != OLD_FIXED_KEY
    client.cookies["messages"] = _messages_cookie("Signed with today's key")
    assert "Signed with today&#x27;s key" in client.get("/").text
    with override_settings(SECRET_KEY=OLD_FIXED_KEY):
        forged = _messages_cookie("Forged with the old key")
    client.cookies["messages"] = forged
    assert "Forged with the old key" not in client.get("/").text


# The database


def test_sqlite_database_url_gets_the_sandbox_sqlite_settings(tmp_path):
    database = tmp_path / "elsewhere.sqlite3"
    code = (
        "import json\n"
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('PRAGMA journal_mode')\n"
        "    mode = cursor.fetchone()[0]\n"
        "print(json.dumps({'mode': mode, **settings.DATABASES['default']}, "
        "default=str))\n"
    )
    printed = _run_settings(code, tmp_path, DATABASE_URL=f"sqlite:///{database}")
    default = json.loads(printed)
    assert default["NAME"] == str(database)
    assert default["mode"] == "wal"
    assert default["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert default["OPTIONS"]["timeout"] == 30
    assert "journal_mode=WAL" in default["OPTIONS"]["init_command"]
    assert default["CONN_MAX_AGE"] == 600
    assert default["CONN_HEALTH_CHECKS"] is True


def test_postgres_database_url_gets_no_sqlite_options(tmp_path):
    # Only the settings module: setting Django up would need a PostgreSQL driver.
    code = "import json\nprint(json.dumps(settings.DATABASES['default']))\n"
    url = "postgres://sandbox:pw@db.example:5432/sandbox"
    printed = _run_settings(code, tmp_path, setup=False, DATABASE_URL=url)
    default = json.loads(printed)
    assert default["ENGINE"] == "django.db.backends.postgresql"
    assert "init_command" not in default.get("OPTIONS", {})
    assert default["CONN_HEALTH_CHECKS"] is True
