"""`python -m spu_lite ...` is the `spu-lite` command."""
import sys

from .tools.cli import main

if __name__ == "__main__":
    sys.exit(main())
