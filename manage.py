#!/usr/bin/env python
"""One entry for all services: `python manage.py <users|orders|notifications> <command> …`."""

import sys

from common.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv))
