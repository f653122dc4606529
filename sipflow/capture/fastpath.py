"""The compiled media fast path (``sipflow/capture/_fastpath.c``), where it was built.

One place decides whether it is in use, so that the decoder (which counts runs of media frames
with it) and the media analysis (which registers its streams' ``Meter`` in a ``StreamTable``)
agree. Optional: without a C compiler at install, or with ``SIPFLOW_PURE_PYTHON=1``, it is
None and everything runs in Python, with the same results.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from types import ModuleType
from typing import Final

__all__ = ["COMPILED", "FASTPATH"]

_fast: ModuleType | None = None
if not os.environ.get("SIPFLOW_PURE_PYTHON"):
    with contextlib.suppress(ImportError):  # built where a C compiler was at hand at install
        _fast = importlib.import_module("sipflow.capture._fastpath")

FASTPATH: Final = _fast
"""The compiled module (``skip_pcap``, ``skip_pcapng``, ``Meter``, ``StreamTable``), or None."""
COMPILED: Final = _fast is not None
"""Whether the compiled media fast path is in use."""
