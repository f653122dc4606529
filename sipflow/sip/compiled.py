"""The optional compiled helpers of ``sipflow.sip``, each None where it is not in use.

They are built by ``pip install`` where a C compiler and the Python headers are at hand
(``setup.py``) and turned off by ``SIPFLOW_PURE_PYTHON=1``; every one has a Python
reference that gives the same results (the tests hold each pair to that), so their absence
only makes sipflow slower.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def load(name: str) -> ModuleType | None:
    """The compiled module ``sipflow.sip.<name>``, or None (not built, or turned off)."""
    if os.environ.get("SIPFLOW_PURE_PYTHON"):
        return None
    try:
        return importlib.import_module(f"sipflow.sip.{name}")
    except ImportError:
        return None
