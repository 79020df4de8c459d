"""`python -m local_runtime.reliability` (`make reliability`): see `cli`."""

import sys

from local_runtime.reliability.cli import main

if __name__ == "__main__":
    sys.exit(main())
