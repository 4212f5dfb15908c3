"""``python -m wlearn.segment train|evaluate|predict`` (see :mod:`wlearn.segment.cli`)."""

import sys

from wlearn.segment.cli import main

if __name__ == "__main__":
    sys.exit(main())
