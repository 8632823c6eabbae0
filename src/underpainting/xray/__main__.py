import sys

from underpainting.xray.cli import main

sys.exit(main())
