"""`python -m corsproxy`: the same entry point as the console script."""

import sys

from corsproxy.cli import main

sys.exit(main())
