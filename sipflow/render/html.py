"""The ladder as one self-contained HTML page: the SVG inline, and on a click on an arrow
that message's full text. No network: nothing is loaded, and the page's Content-Security-Policy
says so (``default-src 'none'``).

Packet text reaches the page three ways, each escaped for where it lands: the call header and
the message list as HTML text (``html.escape``), the full messages as JSON in a
``<script type="application/json">`` block with ``<``, ``>`` and ``&`` written as ``\\u003c``…
(so no ``</script>`` can close it), read by the page's own script with ``textContent``. The
policy lets only that script run (by its hash), not any other script or event handler.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re

from sipflow.render.ladder import Arrow, Ladder
from sipflow.render.summary import arrow_text, call_summary, delta
from sipflow.render.text import clock

LINE_LIMIT = 4000
"""Longest line of a message's text kept on the page (a hostile header can be huge)."""

_SCRIPT = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("sipflow-messages").textContent);
  var heading = document.getElementById("detail-title");
  var body = document.getElementById("detail-text");
  function show(i, remember) {
    var m = data[i];
    if (!m) { return; }
    heading.textContent = m.title;
    body.textContent = m.text;
    document.querySelectorAll(".selected").forEach(function (el) { el.classList.remove("selected"); });
    ["msg-" + i, "item-" + i].forEach(function (id) {
      var el = document.getElementById(id);
      if (el) { el.classList.add("selected"); }
    });
    if (remember) {  // not on load: the browser would then scroll to the fragment
      try { history.replaceState(null, "", "#msg-" + i); } catch (e) { /* some file: URLs */ }
    }
  }
  function bind(el, i) {
    el.addEventListener("click", function (ev) { ev.preventDefault(); show(i, true); });
    el.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); show(i, true); }
    });
  }
  document.querySelectorAll(".msg").forEach(function (el) {
    var match = /^msg-(\\d+)$/.exec(el.id);
    if (!match) { return; }
    el.setAttribute("tabindex", "0");
    el.setAttribute("role", "button");
    bind(el, Number(match[1]));
  });
  document.querySelectorAll("[data-msg]").forEach(function (el) {
    bind(el, Number(el.getAttribute("data-msg")));
  });
  var start = /^#msg-(\\d+)$/.exec(location.hash);
  show(start ? Number(start[1]) : 0, false);
})();
"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
_POLICY = f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{_SCRIPT_HASH}'"

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1em 2em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .2em; }
header p, header ul { margin: .2em 0; }
header ul { padding-left: 1.2em; font-family: ui-monospace, monospace; }
.state { font-weight: bold; }
.ladder { overflow-x: auto; border: 1px solid #ddd; padding: .5em; }
.ladder svg { max-width: none; height: auto; }
.msg { cursor: pointer; }
.msg:hover, .msg:focus, .msg.selected { outline: none; filter: drop-shadow(0 0 2px #0277bd); }
#detail { position: sticky; bottom: 0; background: #fafafa; border: 1px solid #ccc;
  max-height: 30vh; overflow: auto; padding: .2em .8em; margin-top: 1em; }
#detail-text:empty { display: none; }
#detail h2 { font-size: 1em; margin: .3em 0; }
pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; font: 12px/1.35 ui-monospace, monospace; }
ol.messages { font: 12px/1.5 ui-monospace, monospace; padding-left: 3em; }
ol.messages a { color: inherit; text-decoration: none; }
ol.messages a:hover, ol.messages li.selected a { text-decoration: underline; }
.request { color: #0277bd; } .c1xx { color: #ef6c00; } .c2xx { color: #2e7d32; } .failure { color: #c62828; }
.retransmission { opacity: .6; }
"""

_CSS_CLASS = {"request": "request", "1xx": "c1xx", "2xx": "c2xx", "failure": "failure"}


def _json_for_script(value: object) -> str:
    """JSON that is also safe as the content of an HTML ``<script>`` element."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _inline_svg(svg: str) -> str:
    """The ``<svg>`` element alone: no XML declaration, doctype or comments (Graphviz writes
    its version in one, which would make the page depend on it)."""
    start = svg.find("<svg")
    svg = svg[start:] if start >= 0 else svg
    return re.sub(r"<!--.*?-->\n?", "", svg, flags=re.DOTALL).strip()


def _message_text(arrow: Arrow) -> str:
    out = []
    for line in arrow.raw_lines:
        if len(line) > LINE_LIMIT:
            line = f"{line[:LINE_LIMIT]}… [{len(line) - LINE_LIMIT} more characters cut]"
        out.append(line)
    return "\n".join(out)


def _summary(ladder: Ladder, i: int, arrow: Arrow, multi_leg: bool) -> str:
    src, dst = ladder.columns[arrow.src].title, ladder.columns[arrow.dst].title
    return (
        f"#{arrow.frame}  {clock(arrow.timestamp)} {delta(arrow.delta)}  "
        f"{src} → {dst} {arrow.transport}  {arrow_text(arrow, multi_leg=multi_leg)}"
    )


def ladder_html(ladder: Ladder, svg: str) -> str:
    """One page: the call header (state, timings, legs), the ladder ``svg`` (whose message
    arrows are elements with class ``msg`` and id ``msg-{i}``, ``i`` the position in
    ``ladder.arrows``), a panel that shows the full text of the message clicked, and the list
    of messages (also clickable) for when the SVG is not enough; with RTP bars
    (``Ladder.bars``, drawn in the SVG with class ``rtp``: not messages, not clickable), the
    list of the streams; with DTMF notes (``Ladder.notes``), the list of the digits."""
    head = ladder.heading
    esc = html.escape
    multi_leg = head.multi_leg
    title, details = call_summary(head, esc, "→")
    plain_title = f"Call {head.index}: {head.from_} → {head.to}"
    summaries = [_summary(ladder, i, a, multi_leg) for i, a in enumerate(ladder.arrows)]
    data = [{"title": s, "text": _message_text(a)} for s, a in zip(summaries, ladder.arrows, strict=True)]

    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="sipflow">',
        f"<title>{esc(plain_title)} – sipflow</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        "<header>",
        f'<h1 class="state">{title}</h1>',
        f"<p>{details[0]}</p>",
        "<ul>",
        *(f"<li>{line}</li>" for line in details[1:]),
        "</ul>",
        "</header>",
        '<div class="ladder">',
        _inline_svg(svg),
        "</div>",
        '<section id="detail" aria-live="polite">',
        '<h2 id="detail-title">Click an arrow to see its message</h2>',
        '<pre id="detail-text"></pre>',
        "</section>",
        "<h2>Messages</h2>",
        '<ol class="messages">',
    ]
    for i, (arrow, summary) in enumerate(zip(ladder.arrows, summaries, strict=True)):
        classes = _CSS_CLASS[arrow.cls.value] + (" retransmission" if arrow.retransmission else "")
        out.append(
            f'<li id="item-{i}" class="{classes}"><a href="#msg-{i}" data-msg="{i}">{esc(summary)}</a></li>'
        )
    out.append("</ol>")
    if ladder.bars:
        # In the message list's font; not clickable (no data-msg): a stream is not a message.
        out += ["<h2>RTP streams</h2>", '<ul class="streams" style="font: 12px/1.5 ui-monospace, monospace">']
        for bar in ladder.bars:
            src, dst = ladder.columns[bar.src].title, ladder.columns[bar.dst].title
            line = f"#{bar.first_frame}  {clock(bar.first_time)}  {src} → {dst}  {bar.text}"
            out.append(f"<li>{esc(line)}</li>")
        out.append("</ul>")
    if ladder.notes:
        out += ["<h2>DTMF</h2>", '<ul class="dtmf" style="font: 12px/1.5 ui-monospace, monospace">']
        for note in ladder.notes:
            sender = ladder.columns[note.col].title
            line = f"#{note.first_frame}  {clock(note.first_time)}  {sender}  {note.label}"
            out.append(f"<li>{esc(line)}</li>")
        out.append("</ul>")
    out += [
        f'<script type="application/json" id="sipflow-messages">{_json_for_script(data)}</script>',
        f"<script>{_SCRIPT}</script>",
        "</body>",
        "</html>",
    ]
    return "\n".join(out) + "\n"
