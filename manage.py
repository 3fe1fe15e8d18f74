#!/usr/bin/env python
"""Django's command-line utility for the Subscription Sandbox."""

import os
import signal
import sys


def segment_settings_flag(argv: list[str]) -> list[str]:
    """`sendevent --settings JSON`, `runsuite --settings JSON`, `replay --settings
    JSON` and `subscription create --settings JSON` carry Segment's custom
    settings; Django would otherwise take --settings as its settings module on
    any command line."""
    if len(argv) < 2 or argv[1] not in {
        "sendevent",
        "runsuite",
        "replay",
        "subscription",
    }:
        return argv
    renamed = []
    for arg in argv:
        if arg == "--settings":
            arg = "--custom-settings"
        elif arg.startswith("--settings="):
            arg = "--custom-settings=" + arg.removeprefix("--settings=")
        renamed.append(arg)
    return renamed


NOT_MIGRATED = (
    "The sandbox's database ({path}) is not set up yet: run `make migrate` "
    "(or `python manage.py migrate`) first. SANDBOX_DATA_DIR chooses where it "
    "lives.\n"
)


def _stop_while_loading(signum, frame) -> None:
    # Nothing runs or is written yet, so Ctrl+C ends the command at once. Raised
    # as KeyboardInterrupt it could land in a finaliser the garbage collector
    # runs mid-import, where Python prints and ignores it: the server started
    # anyway.
    os._exit(130)


def _loaded() -> None:
    """Load Django and the apps with Ctrl+C meaning "stop now"; then Ctrl+C is
    Python's KeyboardInterrupt again, for each command to handle."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return  # ignored (a background job), or handled by whoever started us
    signal.signal(signal.SIGINT, _stop_while_loading)
    try:
        import django

        django.setup()
    except Exception:
        pass  # Django says what is wrong in its own words, as it always has
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


# Commands that run for long, the garbage collector set for them once loaded.
LONG_RUNNING = {"runserver", "runengine", "replay", "runsuite"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sandbox.settings")
    sys.argv = segment_settings_flag(sys.argv)
    _loaded()
    if len(sys.argv) > 1 and sys.argv[1] in LONG_RUNNING:
        from django.apps import apps

        if apps.ready:
            from sandbox import heap

            heap.settle()
    from django.core.management import execute_from_command_line
    from django.db.utils import OperationalError

    try:
        execute_from_command_line(sys.argv)
    except OperationalError as error:
        # A command run before the database was migrated: said in words, as
        # every command's bad input is, not as a traceback.
        if "no such table" not in str(error):
            raise
        from django.db import connection

        sys.stderr.write(NOT_MIGRATED.format(path=connection.settings_dict["NAME"]))
        sys.exit(2)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        # Ctrl+C while Django is still loading, before a command takes over its
        # signals (runserver, replay and runsuite do): a stop, not a crash.
        sys.exit(130)
