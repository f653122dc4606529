"""The optional C extension; everything else is in pyproject.toml.

``sipflow.sip._scan`` speeds up SIP parsing, ``sipflow.capture._fastpath`` counts runs of RTP
frames. They are optional: where it cannot be built (no C
compiler, no Python headers) the install goes on without it and sipflow runs as pure Python,
with the same results (``SIPFLOW_PURE_PYTHON=1`` turns it off where it was built).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("sipflow.sip._scan", ["sipflow/sip/_scan.c"], optional=True),
        Extension("sipflow.capture._fastpath", ["sipflow/capture/_fastpath.c"], optional=True),
    ]
)
