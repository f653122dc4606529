"""The optional C extensions; everything else is in pyproject.toml.

``sipflow.sip._scan`` speeds up SIP parsing, ``sipflow.sip._fields`` header lookups,
``sipflow.sip._sdp`` the reading of SDP for correlation, ``sipflow.capture._fastpath`` counts
runs of RTP frames and measures their streams. They are optional: where they cannot be built
(no C compiler, no Python headers) the install goes on without them and sipflow runs as pure
Python, with the same results (``SIPFLOW_PURE_PYTHON=1`` turns them off where they were
built). The fast path repeats the float arithmetic of its Python reference step by step; no
fused multiply-add (``-ffp-contract=off``) keeps every rounding the same.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("sipflow.sip._scan", ["sipflow/sip/_scan.c"], optional=True),
        Extension("sipflow.sip._sdp", ["sipflow/sip/_sdp.c"], optional=True),
        Extension("sipflow.sip._fields", ["sipflow/sip/_fields.c"], optional=True),
        Extension(
            "sipflow.capture._fastpath",
            ["sipflow/capture/_fastpath.c"],
            extra_compile_args=["-ffp-contract=off"],
            optional=True,
        ),
    ]
)
