"""``python -m facerobust.cli`` runs the command line."""

import sys

from facerobust.cli import main

sys.exit(main())
