"""``python -m dynst_pyg`` (and ``torchrun -m dynst_pyg``): the ``dynst-pyg`` command."""

import sys

from .cli.main import main

sys.exit(main())
