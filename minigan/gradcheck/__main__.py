"""python -m minigan.gradcheck: every op's gradient against finite differences."""

import sys

from . import main

sys.exit(main())
