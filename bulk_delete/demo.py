"""`python -m bulk_delete.demo` still runs the demo, which now lives in the emulator layer."""

import sys

from .emulator.demo import main

if __name__ == "__main__":
    sys.exit(main())
