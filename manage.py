#!/usr/bin/env python
"""Django's command-line utility for Gatehouse.

An unreachable database ends a command with one line on stderr and exit status 1, not a
traceback (``core.database``); the database URL is never printed, it may hold a password.
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
    from django.core.management import execute_from_command_line

    from core.database import UNAVAILABLE_ERRORS

    try:
        execute_from_command_line(sys.argv)
    except UNAVAILABLE_ERRORS as exc:
        command = sys.argv[1] if len(sys.argv) > 1 else "manage.py"
        sys.stderr.write(
            f"{command}: the database is unavailable ({type(exc).__name__}), so the command did not "
            "complete. Check DATABASE_URL and that the database is running, then try again.\n"
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
