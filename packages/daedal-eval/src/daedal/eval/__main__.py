"""``python -m daedal.eval``: the ``daedal eval`` command without the ``daedal`` script."""

import sys

from daedal.eval.cli import main

sys.exit(main())
