import sys

from underpainting.metrics.cli import main

sys.exit(main())
