"""``python -m sipflow``."""

from sipflow.cli import run

run()
