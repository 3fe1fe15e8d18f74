#!/usr/bin/env python
"""Django's command-line utility for the Subscription Sandbox."""

import os
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


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sandbox.settings")
    sys.argv = segment_settings_flag(sys.argv)
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
    main()
