"""``python -m genrl ...`` = the ``genrl`` command (what ``torchrun ... -m genrl pretrain ...`` runs)."""

import sys

from genrl.app.cli import main

sys.exit(main())
