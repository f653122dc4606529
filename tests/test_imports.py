"""Dependencies point down only (STYLE.md): checked on the source, module by module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sipflow"

# For each layer, the sipflow modules it may import (prefixes).
ALLOWED: dict[str, tuple[str, ...]] = {
    "sipflow.errors": (),
    "sipflow.capture": ("sipflow.capture", "sipflow.errors"),
    "sipflow.sip": ("sipflow.sip", "sipflow.errors"),
    "sipflow.model": (
        "sipflow.model",
        "sipflow.media",
        "sipflow.sip",
        "sipflow.capture.types",
        "sipflow.errors",
    ),
    # Media measures what the capture layer's payload sink hands it: bytes, addresses, kinds.
    "sipflow.media": (
        "sipflow.media",
        "sipflow.sip",
        "sipflow.capture.types",
        "sipflow.capture.detect",
        "sipflow.capture.ip",
        "sipflow.capture.fastpath",
        "sipflow.errors",
    ),
    "sipflow.render": (
        "sipflow.render",
        "sipflow.media",
        "sipflow.model",
        "sipflow.sip",
        "sipflow.capture.types",
        "sipflow.errors",
    ),
    "sipflow.render.report": (
        "sipflow.render",
        "sipflow.checks",
        "sipflow.model",
        "sipflow.sip",
        "sipflow.capture.types",
        "sipflow.errors",
    ),
    "sipflow.checks": (
        "sipflow.checks",
        "sipflow.media",
        "sipflow.model",
        "sipflow.sip",
        "sipflow.capture.types",
        "sipflow.errors",
    ),
    "sipflow.stats": ("sipflow.model", "sipflow.sip", "sipflow.capture.types", "sipflow.errors"),
    # Media totals: the streams of the model, their figures spread as the SIP statistics are.
    "sipflow.media_stats": (
        "sipflow.stats",
        "sipflow.media",
        "sipflow.model",
        "sipflow.sip",
        "sipflow.capture.types",
        "sipflow.errors",
    ),
    "sipflow.render.stats": (
        "sipflow.render",
        "sipflow.stats",
        "sipflow.media_stats",
        "sipflow.media",
        "sipflow.model",
        "sipflow.sip",
        "sipflow.capture.types",
        "sipflow.errors",
    ),
    "sipflow.merge": ("sipflow.capture.types", "sipflow.sip", "sipflow.errors"),
    "sipflow.assign": (),
    "sipflow.correlate": (
        "sipflow.correlate",
        "sipflow.assign",
        "sipflow.model",
        "sipflow.sip",
        "sipflow.capture.types",
        "sipflow.errors",
    ),
    "sipflow.readahead": ("sipflow.capture", "sipflow.media", "sipflow.sip", "sipflow.errors"),
    "sipflow.pipeline": (
        "sipflow.readahead",
        "sipflow.merge",
        "sipflow.correlate",
        "sipflow.capture",
        "sipflow.media",
        "sipflow.sip",
        "sipflow.model",
        "sipflow.errors",
    ),
    # Export files: the renderers' bytes written out, the calls' frames copied for pcap.
    "sipflow.exporting": (
        "sipflow.render",
        "sipflow.capture.writer",
        "sipflow.media",
        "sipflow.model",
        "sipflow.errors",
    ),
    # Archives: the pipeline's analysis of stored packets, written into and read from DuckDB.
    "sipflow.archive": (
        "sipflow.archive",
        "sipflow.pipeline",
        "sipflow.readahead",
        "sipflow.merge",
        "sipflow.correlate",
        "sipflow.checks",
        "sipflow.capture",
        "sipflow.model",
        "sipflow.sip",
        "sipflow.errors",
        "sipflow",
    ),
    # The interactive front end: like the CLI, on top of everything but the CLI.
    "sipflow.browse": (
        "sipflow.browse",
        "sipflow.pipeline",
        "sipflow.exporting",
        "sipflow.render",
        "sipflow.checks",
        "sipflow.media",
        "sipflow.model",
        "sipflow.sip",
        "sipflow.capture.types",
        "sipflow.errors",
    ),
}

_BROWSE_UI = ("sipflow.browse.app", "sipflow.browse.ladder_view", "sipflow.browse.text")
THIRD_PARTY_ONLY_IN = {
    "rich": (
        "sipflow.render.terminal",
        "sipflow.render.call_table",
        "sipflow.cli",
        "sipflow.cli_archive",
        *_BROWSE_UI,
    ),
    "textual": _BROWSE_UI,
    "graphviz": ("sipflow.render.graphviz",),
    "duckdb": ("sipflow.archive.store", "sipflow.archive.indexing", "sipflow.archive.query"),
    "pyarrow": (
        "sipflow.archive.files",
        "sipflow.archive.derived",
        "sipflow.archive.indexing",
        "sipflow.archive.media",
    ),
    "distributed": ("sipflow.archive.scale",),
    "dask": ("sipflow.archive.scale",),
}


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        out.append((name, path))
    return out


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(("name", "path"), _modules(), ids=str)
def test_layering(name: str, path: Path) -> None:
    imports = _imports(path)
    layer = next(
        (k for k in sorted(ALLOWED, key=len, reverse=True) if name == k or name.startswith(k + ".")), None
    )
    if layer is not None:
        bad = {m for m in imports if m.startswith("sipflow") and not m.startswith(ALLOWED[layer])}
        assert not bad, f"{name} imports {bad}, outside what layer {layer} may use"
    for lib, owners in THIRD_PARTY_ONLY_IN.items():
        uses = {m for m in imports if m == lib or m.startswith(lib + ".")}
        if uses:
            assert name in owners, f"{name} imports {lib}; only {owners} may"
    if name != "sipflow.__main__":
        assert "sipflow.cli" not in imports, f"{name} imports the CLI; nothing may"


def test_core_never_touches_files_or_the_terminal() -> None:
    """The sans-I/O core (sip, model, media) opens no file and prints nothing."""
    for name, path in _modules():
        if not name.startswith(("sipflow.sip", "sipflow.model", "sipflow.media")):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"open", "print", "input"}, f"{name} calls {node.func.id}()"
