"""The command lines: metarl-train (train.py) and metarl-evaluate (evaluate.py)."""
