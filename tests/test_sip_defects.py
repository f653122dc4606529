"""Parser defects carry stable codes (``sipflow.sip.defects``) and stay the sentences they were."""

from __future__ import annotations

import ast
import pickle
import re
from pathlib import Path

import pytest

from sipflow.sip import defects as d
from sipflow.sip import parse_message
from sipflow.sip.defects import KINDS, NAMED, START_LINE, Defect, kind_of

PACKAGE = Path(__file__).resolve().parent.parent / "sipflow" / "sip"
BAD_DATE = (
    b"OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-1\r\n"
    b"Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a\r\nTo: <sip:bob@example.com>\r\n"
    b"Call-ID: c1\r\nCSeq: 1 OPTIONS\r\nDate: Fri, 01 Jan 2010 16:00:00 EST\r\n"
    b"Contact: <sip:alice@10.0.0.1>;;x\r\nContent-Length: 0\r\n\r\n"
)


def test_catalogue_codes_are_unique_stable_and_documented() -> None:
    assert len(KINDS) == len(set(KINDS)) >= 50
    for code, kind in KINDS.items():
        assert kind.code == code and re.fullmatch(r"sip\.malformed\.[a-z0-9.-]+", code), code
        assert getattr(d, kind.__qualname__) is kind, code  # what pickle looks up
        assert kind.summary.endswith(".") and kind.reference.startswith("RFC"), code
        assert kind.where in (None, START_LINE, NAMED) or kind.where[0].isupper(), code
    assert set(d.__all__) <= set(dir(d))


def test_a_defect_is_its_sentence_with_a_code() -> None:
    message = parse_message(BAD_DATE)
    assert message.defects == ("Contact has an empty parameter.", "Date is not an RFC 1123 date in GMT.")
    param, date = message.defects
    assert isinstance(date, str) and str(date) == date and f"{date}" == "Date is not an RFC 1123 date in GMT."
    assert (date.code, param.code) == ("sip.malformed.date", "sip.malformed.param.empty")
    assert kind_of(date) is d.BadDate and kind_of("plain text") is Defect
    assert "RFC 1123" in date and date.startswith("Date")
    assert {date} == {"Date is not an RFC 1123 date in GMT."}


def test_defects_survive_pickling_with_their_codes() -> None:
    """Messages cross from worker processes pickled (``sipflow.pipeline``)."""
    for kind in KINDS.values():
        again = pickle.loads(pickle.dumps(kind("x."), protocol=pickle.HIGHEST_PROTOCOL))
        assert type(again) is kind and again == "x."
    message = parse_message(BAD_DATE)
    again = pickle.loads(pickle.dumps(message))
    assert [x.code for x in again.defects] == [x.code for x in message.defects]


def test_the_lazily_parsed_fields_have_codes_too() -> None:
    message = parse_message(BAD_DATE.replace(b"From: <sip:alice", b'From: "Alice <sip:alice'))
    assert "sip.malformed.name-addr.quote" in {x.code for x in message.defects}


def _sentence_args(node: ast.Call) -> list[ast.expr]:
    args = list(node.args)
    return [a.elt if isinstance(a, ast.GeneratorExp) else a for a in args]


@pytest.mark.parametrize("name", ["parse.py", "message.py"])
def test_every_defect_is_made_with_its_kind(name: str) -> None:
    """No bare sentence is appended to a list of defects: each goes through a kind."""
    tree = ast.parse((PACKAGE / name).read_text())
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        target = node.func.value
        if node.func.attr not in ("append", "extend") or not isinstance(target, ast.Name):
            continue
        if target.id not in ("defects", "sink", "name_defects"):
            continue
        for arg in _sentence_args(node):
            assert not isinstance(arg, ast.Constant | ast.JoinedStr), f"{name}:{node.lineno}"
