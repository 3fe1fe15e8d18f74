"""Settings for the Subscription Sandbox: one module, tuned by SANDBOX_* variables."""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = _env_bool("SANDBOX_DEBUG", True)
# A local tool: the fixed development key is fine on a laptop; set a real one anywhere
# the sandbox is reachable by others.
SECRET_KEY = os.environ.get(
    "SANDBOX_SECRET_KEY", "sandbox-local-development-key-change-me-for-shared-servers"
)
ALLOWED_HOSTS = os.environ.get(
    "SANDBOX_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver"
).split(",")

# Where the sandbox itself is served; the demo subscription points at its mock here.
BASE_URL = os.environ.get("SANDBOX_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
DATA_DIR = Path(os.environ.get("SANDBOX_DATA_DIR", BASE_DIR / "var"))
DATA_DIR.mkdir(parents=True, exist_ok=True)

INSTALLED_APPS = [
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
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
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
            "loaders": [
                (
                    "template_partials.loader.Loader",
                    [
                        "django.template.loaders.filesystem.Loader",
                        "django.template.loaders.app_directories.Loader",
                    ],
                )
            ],
        },
    }
]

_database_url = os.environ.get("DATABASE_URL")
if _database_url:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SANDBOX_DB_PATH", DATA_DIR / "sandbox.sqlite3"),
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
            # Tests run on a real file, like the product does.
            "TEST": {"NAME": str(DATA_DIR / "test.sqlite3")},
        }
    }
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
STATIC_ROOT = DATA_DIR / "static"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

MESSAGE_STORAGE = "django.contrib.messages.storage.cookie.CookieStorage"

# The engine delivers in the server process; set SANDBOX_ENGINE=off to run a server
# that only shows (another process then does the sending).
ENGINE_ENABLED = _env_bool("SANDBOX_ENGINE", True)
# How often the server looks for deliveries changed by any process (milliseconds).
LIVE_POLL_MS = int(os.environ.get("SANDBOX_LIVE_POLL_MS", "250"))
# Response bodies are stored up to this many bytes.
RESPONSE_BODY_LIMIT = int(os.environ.get("SANDBOX_RESPONSE_BODY_LIMIT", 256 * 1024))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "sandbox": {
            "handlers": ["console"],
            "level": os.environ.get("SANDBOX_LOG_LEVEL", "INFO"),
        }
    },
}
