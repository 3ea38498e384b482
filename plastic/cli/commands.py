"""Imports every command module so that each registers its commands on the app.

One import per line: each command lives in its own `cmd_*.py` module.
"""
from plastic.cli import cmd_train  # noqa: F401
