"""Archives (``sipflow.archive``, ``sipflow index``, ``--db``, ``sipflow sql``): what an archive
answers equals what analysing its files answers, however and in whatever pieces it was made."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from sipflow import analyze
from sipflow.archive import ArchiveError, Query, index, load, sql
from sipflow.archive import indexing as index_module
from sipflow.archive.files import discover
from sipflow.archive.schema import TABLES
from sipflow.cli import main
from sipflow.errors import UsageError
from sipflow.model.analysis import Analysis
from sipflow.render.json import dumps
from sipflow.render.table import csv_text, table_text

from .conftest import SAMPLES, sample_captures, shared_captures

TIMES = ("indexed_at", "read_seconds")
"""Columns that say when and how fast, not what: left out when archives are compared."""


def _document(analysis: Analysis) -> Any:
    return json.loads(dumps(analysis, analysis.select(all_kinds=True), with_flow=True))


def _same(db: Path, files: Sequence[Path | str]) -> None:
    """The archive answers what analysing ``files`` (in path order) answers: every item,
    with its flow, and the summary."""
    got = _document(load(str(db)))
    want = _document(analyze(sorted(str(f) for f in files)))
    assert got["summary"] == want["summary"]
    assert [c["index"] for c in got["calls"]] == [c["index"] for c in want["calls"]]
    for a, b in zip(got["calls"], want["calls"], strict=True):
        assert a == b, f"call {b['index']} differs"
    assert got == want
    # The RTP streams measured when the files were indexed: each value as measured now.
    measured = load(str(db), media=True)
    assert measured.media_measured
    assert measured.media == analyze(sorted(str(f) for f in files), media=True).media


def _split(capture: Path, folder: Path, packets: int) -> list[Path]:
    """``capture`` cut into files of ``packets`` frames each (``editcap -c``), in order."""
    editcap = shutil.which("editcap")
    if editcap is None:
        pytest.skip("editcap not installed (apt-get install wireshark-common)")
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([editcap, "-c", str(packets), str(capture), str(folder / "part.pcap")], check=True)
    return sorted(folder.glob("part*.pcap"))


def _tables(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted, without the columns that record times."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {}
        for table in TABLES:
            columns = [
                c for c in (line.split()[0] for line in TABLES[table].strip().splitlines()) if c not in TIMES
            ]
            rows = con.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
            out[table] = sorted(rows, key=repr)
        return out
    finally:
        con.close()


@pytest.mark.parametrize("capture", sample_captures() + shared_captures(), ids=lambda p: p.name)
def test_each_capture_reads_back_as_analysed(capture: Path, tmp_path: Path) -> None:
    db = tmp_path / "a.duckdb"
    report = index([str(capture)], str(db), jobs=1)
    assert report.indexed == (str(capture),) and not report.failed
    _same(db, [capture])


def test_many_files_at_once_read_back_as_analysed_together(tmp_path: Path) -> None:
    # Each file is a capture point of its own: merged by time, copies folded, skews estimated.
    files = sample_captures()
    db = tmp_path / "a.duckdb"
    index([str(f) for f in files], str(db), jobs=1)
    _same(db, files)


def test_two_probes_with_skewed_clocks_each_missing_some_messages(tmp_path: Path) -> None:
    # Probe b's clock runs 0.35 s ahead; each probe missed messages the other caught.
    editcap = shutil.which("editcap")
    if editcap is None:
        pytest.skip("editcap not installed (apt-get install wireshark-common)")
    source = str(SAMPLES / "b2bua-3pcc.pcap")
    a, shifted, b = tmp_path / "a.pcap", tmp_path / "shifted.pcap", tmp_path / "b.pcap"
    subprocess.run([editcap, source, str(a), "3", "9", "17"], check=True)
    subprocess.run([editcap, "-t", "0.35", source, str(shifted)], check=True)
    subprocess.run([editcap, str(shifted), str(b), "1", "5", "12", "20-22"], check=True)
    db = tmp_path / "a.duckdb"
    index([str(a), str(b)], str(db), jobs=1)
    _same(db, [a, b])
    assert load(str(db)).summary.skew == {str(b): pytest.approx(0.35, abs=1e-6)}


def test_rotated_files_indexed_one_by_one_equal_the_whole(tmp_path: Path) -> None:
    parts = _split(SAMPLES / "b2bua-load.pcap", tmp_path / "parts", 400)
    assert len(parts) >= 8
    db = tmp_path / "a.duckdb"
    for part in parts:
        report = index([str(part)], str(db), jobs=1)
        assert report.indexed == (str(part),)
    _same(db, parts)
    # The B2BUA legs of a call cut in two by a file boundary are one call.
    whole = analyze([str(SAMPLES / "b2bua-load.pcap")])
    got = load(str(db))
    assert [c.call_ids for c in got.calls] == [c.call_ids for c in whole.calls]
    assert [(c.state, c.final_status, len(c.messages)) for c in got.calls] == [
        (c.state, c.final_status, len(c.messages)) for c in whole.calls
    ]


PLACES = ("file", "files", "frame", "frames")


def _without_places(doc: Any) -> Any:
    """A document without the file names and frame numbers, which differ between a capture
    and the pieces it was cut into."""
    if isinstance(doc, dict):
        return {k: _without_places(v) for k, v in doc.items() if k not in PLACES}
    if isinstance(doc, list):
        return [_without_places(v) for v in doc]
    return doc


ROTATED = sorted((SAMPLES / "rotated").glob("part-*.pcap"))


def test_a_rotated_sipp_kamailio_run_gives_the_calls_of_the_whole_capture(tmp_path: Path) -> None:
    # samples/make-rotated-samples.sh: 60 calls through Kamailio cut into 20 files, most of
    # the calls crossing a cut (their INVITE in one file, the answer or the BYE in another).
    assert len(ROTATED) == 20
    crossing = analyze([str(p) for p in ROTATED])
    assert sum(len({m.file for m in c.messages}) > 1 for c in crossing.calls) >= 20
    whole = _document(analyze(str(SAMPLES / "rotated.pcap")))
    at_once, one_by_one = tmp_path / "at-once.duckdb", tmp_path / "one-by-one.duckdb"
    report = index([str(SAMPLES / "rotated")], str(at_once), jobs=2)
    assert len(report.indexed) == 20 and not report.failed
    for part in ROTATED:
        index([str(part)], str(one_by_one), jobs=1)
    for db in (at_once, one_by_one):
        got = _document(load(str(db)))
        assert len(got["calls"]) == len(whole["calls"]) == 60
        for a, b in zip(got["calls"], whole["calls"], strict=True):
            assert _without_places(a) == _without_places(b), f"call {b['index']} differs"
        # Files that follow one another are no capture points watching the same link: no
        # skew between them, and no retransmission across a cut taken for a copy.
        summary = got["summary"]
        assert summary.pop("skew") == {} and summary.pop("duplicates") == summary.pop("doubled") == 0
        assert len(summary.pop("capture_points")) == 20
        assert _without_places(summary) == _without_places(whole["summary"])
    assert _tables(at_once) == _tables(one_by_one)


def test_a_second_run_reads_only_new_or_changed_files(tmp_path: Path) -> None:
    parts = _split(SAMPLES / "b2bua-load.pcap", tmp_path / "parts", 600)
    db = tmp_path / "a.duckdb"
    first = index([str(tmp_path / "parts")], str(db), jobs=1)
    assert len(first.indexed) == len(parts)
    again = index([str(tmp_path / "parts")], str(db), jobs=1)
    assert again.indexed == () and again.unchanged == len(parts) and again.reduced_call_ids == 0
    # A file replaced under the same name (same size even) is read again, and its old calls go.
    replaced = parts[-1]
    other = SAMPLES / "basic-call.pcap"
    shutil.copyfile(other, replaced)
    third = index([str(tmp_path / "parts")], str(db), jobs=1)
    assert third.indexed == (str(replaced),)
    _same(db, parts)


@pytest.mark.parametrize("sample", ["three-calls.pcap", "media-dtmf.pcap"])
def test_a_file_still_being_written_is_completed_on_the_next_run(sample: str, tmp_path: Path) -> None:
    source = (SAMPLES / sample).read_bytes()
    growing = tmp_path / "live.pcap"
    growing.write_bytes(source[: len(source) * 2 // 3 + 5])  # cut inside a record
    db = tmp_path / "a.duckdb"
    first = index([str(growing)], str(db), jobs=1)
    assert first.indexed == (str(growing),) and first.warnings  # the cut record is reported
    assert load(str(db)).summary.partial
    _same(db, [growing])  # the streams so far too
    growing.write_bytes(source)
    second = index([str(growing)], str(db), jobs=1)
    assert second.indexed == (str(growing),)
    _same(db, [growing])
    assert not load(str(db)).summary.partial


def test_a_damaged_file_is_reported_and_skipped(tmp_path: Path) -> None:
    bad = tmp_path / "b-not-a-capture.pcap"
    bad.write_bytes(b"this is no capture at all, just text\n" * 10)
    good = tmp_path / "a.pcap"
    shutil.copyfile(SAMPLES / "basic-call.pcap", good)
    db = tmp_path / "a.duckdb"
    report = index([str(tmp_path)], str(db), jobs=1)
    assert report.indexed == (str(good),)
    assert len(report.failed) == 1 and str(bad) in report.failed[0] and "\n" not in report.failed[0]
    _same(db, [good])
    result = CliRunner().invoke(main, ["index", str(tmp_path), "--db", str(tmp_path / "b.duckdb")])
    assert result.exit_code == 3
    assert f"sipflow: warning: {bad}" in result.output


def test_an_interrupted_reduction_is_done_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = _split(SAMPLES / "b2bua-load.pcap", tmp_path / "parts", 700)
    db = tmp_path / "a.duckdb"
    index([str(p) for p in parts[:2]], str(db), jobs=1)

    def interrupted(*args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(index_module, "_reduce", interrupted)
    with pytest.raises(KeyboardInterrupt):
        index([str(p) for p in parts[2:]], str(db), jobs=1)
    monkeypatch.undo()
    # The packets of the files read are in, not yet reduced; the calls are still the old ones.
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM files WHERE NOT reduced").fetchall()[0][0] == len(parts) - 2
    con.close()
    report = index([str(p) for p in parts], str(db), jobs=1)
    assert report.indexed == ()
    _same(db, parts)


def test_a_pool_writes_the_archive_one_process_writes(tmp_path: Path) -> None:
    parts = _split(SAMPLES / "b2bua-load.pcap", tmp_path / "parts", 500)
    # RTP streams cut by the rotation: each file's part of a stream is measured where it is read.
    parts += _split(SAMPLES / "media-dtmf.pcap", tmp_path / "parts" / "media", 200)
    index([str(tmp_path / "parts")], str(tmp_path / "one.duckdb"), jobs=1)
    index([str(tmp_path / "parts")], str(tmp_path / "two.duckdb"), jobs=2)
    assert _tables(tmp_path / "one.duckdb") == _tables(tmp_path / "two.duckdb")
    _same(tmp_path / "two.duckdb", parts)


@pytest.mark.parametrize("folder", ["b2bua-load", "rotated"])
def test_a_dask_cluster_writes_the_archive_one_process_writes(folder: str, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    if folder == "rotated":
        parts = tmp_path / "parts"
        shutil.copytree(SAMPLES / "rotated", parts)
    else:
        _split(SAMPLES / "b2bua-load.pcap", tmp_path / "parts", 500)
        _split(SAMPLES / "media-dtmf.pcap", tmp_path / "parts" / "media", 200)
    index([str(tmp_path / "parts")], str(tmp_path / "one.duckdb"), jobs=1)
    report = index([str(tmp_path / "parts")], str(tmp_path / "dask.duckdb"), scheduler="local:2")
    assert not report.failed and len(report.indexed) >= 8
    assert _tables(tmp_path / "one.duckdb") == _tables(tmp_path / "dask.duckdb")


def test_cli_calls_from_the_archive_equal_calls_from_the_files(tmp_path: Path) -> None:
    parts = [str(p) for p in _split(SAMPLES / "b2bua-load.pcap", tmp_path / "parts", 900)]
    db = str(tmp_path / "a.duckdb")
    runner = CliRunner()
    result = runner.invoke(main, ["index", *parts, "--db", db, "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert f"{len(parts)} of {len(parts)} files read" in result.output
    for args in (
        ["calls", "--format", "json"],
        ["calls", "--format", "json", "--all"],
        ["calls", "--format", "csv", "--status", "4xx"],
        ["calls", "--format", "json", "--to", "bob", "--state", "completed"],
        ["calls", "--format", "json", "--header", "User-Agent=sipp", "--since", "2026-01-01"],
        ["ladder", "--call", "7", "--plain", "--width", "120"],
        ["stats", "--format", "json"],
        ["check", "--format", "json"],
    ):
        from_files = runner.invoke(main, [*args, *parts])
        from_db = runner.invoke(main, [*args, "--db", db])
        assert from_db.exit_code == from_files.exit_code, (args, from_db.output)
        assert from_db.output == from_files.output, args
        assert from_db.output.strip()


def test_cli_media_from_the_archive_equals_media_from_the_files(tmp_path: Path) -> None:
    # Two SIPp calls an hour apart in one file, their RTP replayed from the same pcap (the same
    # SSRC to the same address and port: one stream each way, as tshark lists them); both
    # calls described that address, so the first call owns the streams: a query for the second
    # must not give it them ("first call that describes it" is for streams before any SDP).
    editcap, mergecap = shutil.which("editcap"), shutil.which("mergecap")
    if editcap is None or mergecap is None:
        pytest.skip("editcap and mergecap not installed (apt-get install wireshark-common)")
    first, later = SAMPLES / "media-two-way.pcap", SAMPLES / "media-dtmf.pcap"
    shift = analyze([str(first)]).summary.last_time - analyze([str(later)]).summary.first_time + 3600
    shifted, both = tmp_path / "shifted.pcap", tmp_path / "b-both.pcap"
    subprocess.run([editcap, "-t", str(shift), str(later), str(shifted)], check=True)
    subprocess.run([mergecap, "-w", str(both), str(first), str(shifted)], check=True)
    files = sorted(
        [str(both), str(SAMPLES / "media-loss-jitter.pcap"), str(SAMPLES / "faulty-one-way-audio.pcap")]
    )
    db = str(tmp_path / "a.duckdb")
    runner = CliRunner()
    assert runner.invoke(main, ["index", *files, "--db", db, "--jobs", "1"]).exit_code == 0
    whole = analyze(files, media=True)
    dtmf = next(c for c in whole.calls if "dtmf" in c.id)
    two_way = next(c for c in whole.calls if "two-way" in c.id)
    for args in (
        ["media", "--format", "json"],
        ["media"],
        ["calls", "--format", "json", "--media"],
        ["calls", "--format", "json", "--media", "--call-id", dtmf.id],
        ["calls", "--format", "json", "--media", "--call-id", two_way.id],
        ["calls", "--format", "json", "--media", "--header", "Call-ID=dtmf"],
        ["calls", "--media", "--sort", "mos"],
        ["ladder", "--call", str(dtmf.index), "--media", "--plain", "--width", "120"],
        ["stats", "--format", "json", "--media"],
        ["check", "--format", "json"],
    ):
        from_files = runner.invoke(main, [*args, *files])
        from_db = runner.invoke(main, [*args, "--db", db])
        assert from_db.exit_code == from_files.exit_code, (args, from_db.output)
        assert from_db.output == from_files.output, args
    doc = json.loads(runner.invoke(main, ["calls", "--format", "json", "--media", "--db", db]).output)
    owned = {c["index"]: len(c["media"]) for c in doc["calls"]}
    assert owned[two_way.index] == 2 and owned[dtmf.index] == 0
    # The view stream_calls links as model.media does, in SQL.
    from sipflow.model.media import calls_of_streams

    _, rows = sql(
        db,
        """SELECT c.call_index FROM media_streams s JOIN files f USING (file_id)
           LEFT JOIN stream_calls USING (file_id, seq) LEFT JOIN calls c USING (call_key)
           ORDER BY s.first_time, f.path, s.seq""",
    )
    want = [c.index if c is not None else None for c in calls_of_streams(whole.calls, whole.media)]
    assert [r[0] for r in rows] == want and None not in want


def test_cli_export_from_the_archive(tmp_path: Path) -> None:
    capture = str(SAMPLES / "b2bua-3pcc.pcap")
    db = str(tmp_path / "a.duckdb")
    runner = CliRunner()
    assert runner.invoke(main, ["index", capture, "--db", db]).exit_code == 0
    for suffix in ("svg", "mmd", "pcap", "json"):
        a, b = tmp_path / f"db.{suffix}", tmp_path / f"files.{suffix}"
        assert runner.invoke(main, ["export", "--db", db, "--call", "2", "-o", str(a)]).exit_code == 0
        assert runner.invoke(main, ["export", capture, "--call", "2", "-o", str(b)]).exit_code == 0
        assert a.read_bytes() == b.read_bytes(), suffix


def test_query_narrows_in_sql_and_the_rest_after(tmp_path: Path) -> None:
    capture = str(SAMPLES / "b2bua-load.pcap")
    db = str(tmp_path / "a.duckdb")
    index([capture], db)
    whole = analyze([capture])
    for query in (
        Query(status="486"),
        Query(status="4xx", to="BOB"),
        Query(state=("cancelled",)),
        Query(index=5),
        Query(call_id=whole.calls[3].legs[-1].call_id),
        Query(since=whole.calls[10].start, until=whole.calls[20].start),
        Query(all_kinds=True, from_="+4930"),
        Query(headers=(("content-type", "sdp"),), status="2xx"),
    ):
        kwargs = {name: getattr(query, name) for name in Query.__dataclass_fields__}
        want = [c.index for c in whole.select(**kwargs)]
        got = load(db, query)
        assert [c.index for c in got.select(**kwargs)] == want, query
        assert want, query


def test_sql_prints_rows_safely(tmp_path: Path) -> None:
    db = str(tmp_path / "a.duckdb")
    index([str(SAMPLES / "three-calls.pcap")], db)
    columns, rows = sql(db, "SELECT state, count(*) AS n FROM calls GROUP BY state ORDER BY state")
    assert columns == ["state", "n"] and sum(r[1] for r in rows) == 3
    runner = CliRunner()
    out = runner.invoke(main, ["sql", "--db", db, "--format", "json", "SELECT call_index, id FROM calls"])
    assert out.exit_code == 0 and [r["call_index"] for r in json.loads(out.output)] == [1, 2, 3]
    bad = runner.invoke(main, ["sql", "--db", db, "SELECT nothing_here"])
    assert bad.exit_code == 2 and bad.output.count("\n") == 1 and "sql:" in bad.output
    # Read-only: an archive cannot be changed through sql.
    assert runner.invoke(main, ["sql", "--db", db, "DELETE FROM calls"]).exit_code == 2
    # Packet text never reaches the terminal or a spreadsheet as control codes or formulas.
    text = table_text(["a"], [("\x1b[31mred\x07",)])
    assert "\x1b" not in text and "\x07" not in text
    assert csv_text(["a"], [("=HYPERLINK(1)",)]).splitlines()[1] == "'=HYPERLINK(1)"


def test_parquet_holds_the_same_tables(tmp_path: Path) -> None:
    capture = str(SAMPLES / "b2bua-load.pcap")
    out = tmp_path / "pq"
    result = CliRunner().invoke(main, ["index", capture, "--format", "parquet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    db = str(tmp_path / "a.duckdb")
    index([capture], db)
    con = duckdb.connect()
    for table in ("calls", "messages", "packets", "legs", "transactions"):
        stored = sql(db, f"SELECT count(*) FROM {table}")[1][0][0]
        files = list((out / table).rglob("*.parquet"))
        assert files, table
        pattern = str(out / table / "**" / "*.parquet")
        assert con.execute(f"SELECT count(*) FROM read_parquet('{pattern}')").fetchall()[0][0] == stored
    assert any(p.name.startswith("day=") for p in (out / "messages").iterdir())


def test_what_is_not_an_archive_is_said_so(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such archive"):
        load(str(tmp_path / "missing.duckdb"))
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE t (x INTEGER)")
    con.close()
    with pytest.raises(ArchiveError, match="not a sipflow archive"):
        load(str(other))
    db = tmp_path / "a.duckdb"
    index([str(SAMPLES / "basic-call.pcap")], str(db))
    con = duckdb.connect(str(db))
    con.execute("UPDATE schema_version SET version = 99")
    con.close()
    with pytest.raises(ArchiveError, match="schema version 99"):
        load(str(db))
    text = tmp_path / "text.duckdb"
    text.write_text("hello")
    result = CliRunner().invoke(main, ["calls", "--db", str(text)])
    assert result.exit_code == 2 and result.output.startswith(f"sipflow: error: {text}")


def test_discover_finds_folders_and_patterns(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    for name in ("d/b.pcap", "d/a.pcapng", "d/e/c.pcap.gz", "d/notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert discover([str(tmp_path / "d")]) == [
        str(tmp_path / "d" / n) for n in ("a.pcapng", "b.pcap", os.path.join("e", "c.pcap.gz"))
    ]
    assert discover([str(tmp_path / "d" / "*.pcap")]) == [str(tmp_path / "d" / "b.pcap")]
    with pytest.raises(UsageError, match="no such file"):
        discover([str(tmp_path / "nothing")])
    with pytest.raises(UsageError, match="no file matches"):
        discover([str(tmp_path / "*.nothing")])
