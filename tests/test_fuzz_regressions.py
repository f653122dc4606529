"""The fuzz harnesses of fuzz/ run on their seed corpora and on every input a fuzzer ever broke.

CI runs this, not the fuzzers: atheris is not needed (fuzz/*.py import it only when run as
scripts). A crash found by ``python fuzz/<target>.py`` is kept as a file under
``tests/fuzz_regressions/<target>/`` (any name; a comment file ``*.md`` is ignored) and then
passes here once the bug is fixed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
REGRESSIONS = Path(__file__).resolve().parent / "fuzz_regressions"
TARGETS = ("sip_parser", "capture_reader")


def _harness(target: str) -> Callable[[bytes], None]:
    spec = importlib.util.spec_from_file_location(f"_fuzz_{target}", FUZZ / f"{target}.py")
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    check: Callable[[bytes], None] = module.check
    return check


def _inputs(target: str) -> list[Path]:
    files: list[Path] = []
    for folder in (REGRESSIONS / target, FUZZ / "corpus" / target):
        if folder.is_dir():
            files += sorted(p for p in folder.iterdir() if p.is_file() and p.suffix != ".md")
    return files


CASES = [(target, path) for target in TARGETS for path in _inputs(target)]


def test_every_target_has_inputs() -> None:
    for target in TARGETS:
        assert (FUZZ / f"{target}.py").is_file()
        assert _inputs(target), f"no seed corpus for {target}"


@pytest.fixture(scope="module")
def harnesses() -> dict[str, Callable[[bytes], None]]:
    return {target: _harness(target) for target in TARGETS}


@pytest.mark.parametrize(
    ("target", "path"), CASES, ids=[f"{t}/{p.parent.parent.name}/{p.name}" for t, p in CASES]
)
def test_fuzz_input(target: str, path: Path, harnesses: dict[str, Callable[[bytes], None]]) -> None:
    harnesses[target](path.read_bytes())
