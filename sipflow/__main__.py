"""``python -m sipflow``."""

from sipflow.cli import main

main()
