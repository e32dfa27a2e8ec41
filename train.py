"""Meta-train an agent on a task family: ``python train.py --help`` (the same as ``metarl-train``).

A thin wrapper over `metarl.cli.train`; the Python API is ``metarl.train``.
"""

import sys

from metarl.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
