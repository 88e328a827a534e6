"""``python -m recsys.cli`` runs the ``recsys`` command line."""

import sys

from recsys.cli import main

sys.exit(main())
