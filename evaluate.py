"""Evaluate a trained run on held-out tasks: ``python evaluate.py --help`` (the same as
``metarl-evaluate``).

A thin wrapper over `metarl.cli.evaluate`; the Python API is ``metarl.evaluate``.
"""

import sys

from metarl.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
