"""``python -m theseus``: the command line (see ``theseus._cli``)."""

import sys

from ._cli import main

sys.exit(main())
