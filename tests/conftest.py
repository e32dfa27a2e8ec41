"""pytest configuration: the tests import the installed metarl (scripts/setup.sh)."""
