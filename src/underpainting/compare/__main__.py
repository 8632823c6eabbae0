import sys

from underpainting.compare import main

if __name__ == "__main__":
    sys.exit(main())
