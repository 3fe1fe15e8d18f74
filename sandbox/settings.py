"""Settings for the Subscription Sandbox: one module, tuned by SANDBOX_* variables."""

import os
import time
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


# Off unless asked for: Django's technical pages show settings and request data, API
# keys included. SANDBOX_DEBUG=1 is for work on the sandbox itself.
DEBUG = _env_bool("SANDBOX_DEBUG", False)
ALLOWED_HOSTS = os.environ.get(
    "SANDBOX_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver"
).split(",")

# Where the sandbox itself is served; the demo subscription points at its mock here.
BASE_URL = os.environ.get("SANDBOX_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Absolute, so that processes this one starts (the engine's, a replay's reading)
# are given the same one whatever their working directory.
DATA_DIR = Path(os.path.abspath(os.environ.get("SANDBOX_DATA_DIR", BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _stored_secret_key(path: Path) -> str:
    """The key kept in the data directory, made on first start.

    Created exclusively and readable by its owner only; when two processes start
    at once, the one that loses the race reads the winner's key.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret_key(path)
    key = get_random_secret_key()
    with os.fdopen(descriptor, "w") as key_file:
        key_file.write(key)
    return key


def _read_secret_key(path: Path) -> str:
    for _ in range(50):
        key = path.read_text().strip()
        if key:
            return key
        # Another process has created the file and is about to write it.
        time.sleep(0.01)
    raise ImproperlyConfigured(f"{path} is empty; delete it to make a new key.")


SECRET_KEY = (
    os.environ.get("SANDBOX_SECRET_KEY")
    or os.environ.get("SECRET_KEY")
    or _stored_secret_key(DATA_DIR / "secret_key")
)

INSTALLED_APPS = [
    # Before daphne: its `runserver` replaces Daphne's.
    "sandbox.server",
    "daphne",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "template_partials.apps.SimpleAppConfig",
    "sandbox.subscriptions",
    "sandbox.delivery",
    "sandbox.mock",
    "sandbox.tester",
    "sandbox.suites",
    "sandbox.sources",
    "sandbox.replay",
    "sandbox.functions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # WhiteNoise, wrapped so that the async path never waits inside it.
    "sandbox.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before CSRF, which reads the form: an oversized or non-UTF-8 body is refused
    # in the sandbox's words instead.
    "sandbox.middleware.RequestBodyGuardMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "sandbox.urls"
ASGI_APPLICATION = "sandbox.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.messages.context_processors.messages",
            ],
            "builtins": [
                "template_partials.templatetags.partials",
                "django_htmx.templatetags.django_htmx",
            ],
            # Cached, as Django's default loaders are: parsing a page's templates
            # costs more than rendering them. runserver's reloader clears the cache.
            "loaders": [
                (
                    "template_partials.loader.Loader",
                    [
                        (
                            "django.template.loaders.cached.Loader",
                            [
                                "django.template.loaders.filesystem.Loader",
                                "django.template.loaders.app_directories.Loader",
                            ],
                        )
                    ],
                )
            ],
        },
    }
]

# Any SQLite database, the default file or one named by DATABASE_URL, gets the same
# settings: the engine writes from several threads while the page reads.
_SQLITE_DATABASE = {
    # Django's, with a writer that waits for the lock in short steps.
    "ENGINE": "sandbox.sqlite",
    "OPTIONS": {
        # WAL lets the page read while the engine writes; IMMEDIATE makes a
        # writer wait for the lock up front instead of failing mid-transaction.
        "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    },
    # Opening a connection (and its pragmas) costs about half a millisecond;
    # the engine's threads keep theirs.
    "CONN_MAX_AGE": 600,
    "CONN_HEALTH_CHECKS": True,
}

_database_url = os.environ.get("DATABASE_URL")
if _database_url:
    _database = dj_database_url.parse(
        _database_url, conn_max_age=60, conn_health_checks=True
    )
    if _database["ENGINE"] == "django.db.backends.sqlite3":
        _database = {
            **_database,
            **_SQLITE_DATABASE,
            "OPTIONS": {**_SQLITE_DATABASE["OPTIONS"], **_database.get("OPTIONS", {})},
        }
else:
    _database = {
        **_SQLITE_DATABASE,
        "NAME": Path(
            os.path.abspath(
                os.environ.get("SANDBOX_DB_PATH", DATA_DIR / "sandbox.sqlite3")
            )
        ),
        # Tests run on a real file, like the product does.
        "TEST": {"NAME": str(DATA_DIR / "test.sqlite3")},
    }
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_redis_url = os.environ.get("REDIS_URL")
if _redis_url:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [_redis_url]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise serves straight from the app and project static folders, so the
# sandbox runs with DEBUG off and no collectstatic step (hence no STATIC_ROOT).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

MESSAGE_STORAGE = "django.contrib.messages.storage.cookie.CookieStorage"

# The engine delivers in the server process; set SANDBOX_ENGINE=off to run a server
# that only shows (another process then does the sending).
ENGINE_ENABLED = _env_bool("SANDBOX_ENGINE", True)
# runserver's engine runs as a process of its own, on the other core; off keeps
# it in a thread of the server.
ENGINE_PROCESS = _env_bool("SANDBOX_ENGINE_PROCESS", True)
# How often the server looks for deliveries changed by any process (milliseconds).
LIVE_POLL_MS = int(os.environ.get("SANDBOX_LIVE_POLL_MS", "250"))
# Response bodies are stored up to this many bytes.
RESPONSE_BODY_LIMIT = int(os.environ.get("SANDBOX_RESPONSE_BODY_LIMIT", 256 * 1024))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"without_traceback": {"()": "sandbox.logs.WithoutTraceback"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "console_one_line": {
            "class": "logging.StreamHandler",
            "filters": ["without_traceback"],
        },
    },
    "loggers": {
        # Requests refused as suspicious: one line each, no traceback.
        "django.security": {
            "handlers": ["console_one_line"],
            "level": "WARNING",
            "propagate": False,
        },
        # Replaces Django's own console logging, which stays silent with DEBUG off:
        # a failed request's traceback goes to the console, never to the page.
        "django": {"handlers": ["console"], "level": "INFO" if DEBUG else "ERROR"},
        "sandbox": {
            "handlers": ["console"],
            "level": os.environ.get("SANDBOX_LOG_LEVEL", "INFO"),
        },
    },
}

# Suite files (`*.suite.json`) read where they are, relative to the working
# directory: a partner keeps them in their own repository.
SUITES_DIR = Path(os.environ.get("SANDBOX_SUITES_DIR", "suites"))
