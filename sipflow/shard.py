"""One capture on several cores: its Call-IDs shared out among worker processes, the calls
correlated after, the JSON of ``sipflow calls`` written from what the workers render.

Every leg is built from the messages of its own Call-ID (``model.tracker``), so a worker that
keeps only the Call-IDs hashing to its shard builds exactly the legs the whole capture has of
them. What crosses Call-IDs is small and goes through this process::

    workers: read every file, parse, dedupe and track their shard; each leg that is over is
             retired meanwhile (``Tracker.retire``): its correlation facts, in batches (taken in
             here while the workers go on), and its outline and JSON kept  ──► latest time
    here:    the capture's end (timers run on it)                      ──► workers
    workers: the other legs frozen, their facts sent, then each leg's Call-ID and start  ──► here
    here:    correlate_facts, related_from_facts, calls numbered, each call given to the
             worker holding its first leg (the workers make their legs' JSON meanwhile,
             ``render.json.leg_text``; retiring, each leg's entry as a call of its own but for
             its number, ``render.json.EntryCut``)                     ──► workers
    workers: of the legs of calls owned elsewhere, their outlines and JSON (``leg_outline``,
             ``render.json.member_text``; the legs themselves where the selection reads
             more than a call's outcome), pickled ──► here ──► their owners
    owners:  calls of legs held in one worker built (``build_call``), the others decided
             from their outlines (``call_outcome``)
    workers: calls selected and rendered (``render.json.entry_text``) ──► here, in order

Where the selection needs no more of a call than its outcome and the JSON is compact (the
default; ``_Worker.run_retiring``), a worker keeps of a leg once it is over only its
``LegOutline`` and its JSON, so it holds the calls up at once rather than the capture; a
message that comes for a Call-ID after its leg was retired (a registration refreshed on it, a
late retransmission) has that Call-ID built again from the start by a second reading of the
input, and its facts sent before are withdrawn. Otherwise (``--from``, ``--to``, ``--header``,
indented JSON) the workers hold their legs whole, as one process does.

A worker numbers its messages by their place in the merged input (``Tracker.feed(index=)``),
so legs, calls and malformed packets sort as in one process: the output is the same as
``--jobs 1`` (tested on every sample and shared capture). Each worker reads the whole input,
but parses only its own messages: the Call-ID of the usual message is read alone first
(``sip.parse.call_id_hint``, the Call-ID parsing gives), and only a message whose Call-ID that
does not tell is parsed by every worker. A message that no parse makes sense of goes to the
worker of the Call-ID read alone, else to the first.
"""

from __future__ import annotations

import heapq
import inspect
import itertools
import multiprocessing
import os
import pickle
import sys
import threading
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, replace
from functools import partial
from multiprocessing.connection import Connection, wait
from operator import itemgetter
from typing import Any, Final

from sipflow.capture.reader import STDIN, CaptureReader
from sipflow.capture.types import CaptureWarning, SipPayload
from sipflow.correlate import CorrelationOptions
from sipflow.correlate.facts import Sharing, _detached_row, _FactRow, _facts, _from_row, _LegFacts
from sipflow.correlate.group import correlate_facts
from sipflow.correlate.transfers import TransferFacts, related_from_facts, transfer_facts
from sipflow.errors import SipflowError
from sipflow.merge import Deduplicator
from sipflow.model.analysis import Analysis, Summary, call_filter, outcome_filter
from sipflow.model.call import (
    Call,
    CallKind,
    CallOutcome,
    Leg,
    LegOutline,
    Link,
    build_call,
    call_outcome,
    leg_outline,
)
from sipflow.model.message import Malformed
from sipflow.model.tracker import Tally, Tracker
from sipflow.pipeline import (
    _PROGRESS_EVERY,
    AnalysisOptions,
    CapturePoints,
    Progress,
    _file_names,
    _given_skews,
    _merged,
    _skews,
    dedupe_key,
    gc_paused,
    summarize,
)
from sipflow.readahead import BATCH, Parsed, ParseFailure, parse_or_failure
from sipflow.render.json import (
    EntryCut,
    LegText,
    entry_text,
    entry_text_of,
    iter_document,
    leg_text,
    member_text,
    outline_member_text,
    outlined_entry_text,
    single_entry_cut,
    single_entry_text,
)
from sipflow.sip.parse import call_id_hint

MIN_BYTES: Final = 16 << 20
"""Input below which one process is used: starting the workers and handing the facts over
costs more than sharing out the work of a small capture saves."""

_BATCH: Final = 256
"""Rendered calls a worker sends at a time."""
_FACTS_BATCH: Final = 2048
"""Legs' correlation facts a worker sends at a time."""
_AHEAD: Final = 64
"""Legs whose JSON a worker makes between two looks for the coordinator's plan."""
_RETIRE_EVERY: Final = 2048
"""Messages a worker tracks between two looks for legs that are over (``Tracker.retire``)."""


@dataclass(frozen=True, slots=True)
class JsonRun:
    """What ``calls_json`` gives: the document's text in pieces, and the run's analysis, which
    holds its summary, warnings and malformed packets; its calls and messages stayed in the
    workers and are empty here."""

    analysis: Analysis
    pieces: Iterator[str]


def shard_count(jobs: int | None) -> int:
    """How many workers ``--jobs`` gives: None means one per core this process may use."""
    if jobs is None:
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1
    return jobs


def calls_json(
    paths: Sequence[str],
    options: AnalysisOptions,
    *,
    selection: dict[str, Any] | None = None,
    indent: int | None = None,
    progress: Progress | None = None,
    min_bytes: int | None = None,
) -> JsonRun | None:
    """``sipflow calls --format json`` on ``paths``, over ``shard_count(options.jobs)`` worker
    processes: the JSON of ``render.json.iter_dumps(analyze(paths), analysis.select(**selection))``.

    None when one process is the way: one job or core, input smaller than ``min_bytes``
    (default ``MIN_BYTES``), an input that is no regular file (standard input, a pipe), media
    measured, no ``fork`` here or other threads running in this process (a fork could leave
    the workers waiting on a lock one of them held); also when the input holds more Call-IDs than
    ``options.max_call_ids`` (one process then says which messages it left out). Raises what
    ``analyze`` raises."""
    started = start(paths, options, selection=selection, indent=indent, min_bytes=min_bytes)
    return started.run(progress) if started is not None else None


def start(
    paths: Sequence[str],
    options: AnalysisOptions,
    *,
    selection: dict[str, Any] | None = None,
    indent: int | None = None,
    min_bytes: int | None = None,
) -> Sharded | None:
    """``calls_json`` in two steps: the workers started here (None where one process is the
    way), then ``Sharded.run``. Forking before anything starts a thread (a progress bar's) keeps
    the workers clear of locks such a thread might hold."""
    names = _file_names(paths)
    workers = shard_count(options.jobs)
    if workers < 2 or options.media or "fork" not in multiprocessing.get_all_start_methods():
        return None
    if threading.active_count() > 1:
        return None  # forking a process that runs other threads can deadlock the child
    if any(name == STDIN or not os.path.isfile(name) for name in names):
        return None
    if sum(os.path.getsize(name) for name in names) < (MIN_BYTES if min_bytes is None else min_bytes):
        return None
    sharded = Sharded(names, options, selection or {}, indent, workers)
    sharded.start()
    return sharded


class _WorkerError(Exception):
    """A worker failed in a way that does not pickle: its traceback."""


class Sharded:
    """A sharded run, its workers started (``start``): this process's side of it (see the
    module's docstring)."""

    def __init__(
        self,
        names: tuple[str, ...],
        options: AnalysisOptions,
        selection: dict[str, Any],
        indent: int | None,
        workers: int,
    ) -> None:
        self.names, self.options, self.selection = names, options, selection
        self.indent, self.workers = indent, workers
        self.progress: Progress | None = None
        self.stack = ExitStack()
        self.conns: list[Connection] = []
        self.facts: list[list[_LegFacts]] = [[] for _ in range(workers)]
        """Each worker's legs' correlation facts, as they arrive (``index`` the place of the
        leg's first message in the merged input)."""
        self.processes: list[multiprocessing.process.BaseProcess] = []
        self.sharing = Sharing()
        """One object for the equal values of all the facts taken in (``Sharing.adopt``)."""
        self.retracted = 0
        """Legs the workers retired and built again (a message came after; ``run_retiring``)."""

    def start(self) -> None:
        context = multiprocessing.get_context("fork")
        try:
            for shard in range(self.workers):
                here, there = context.Pipe()
                process = context.Process(
                    target=_work, args=(there, self.names, self.options, self.selection, self.indent, shard,
                                        self.workers), daemon=True,
                )  # fmt: skip
                process.start()
                there.close()
                self.conns.append(here)
                self.processes.append(process)
                self.stack.callback(_stop, process)
        except BaseException:
            self._kill()
            raise

    def run(self, progress: Progress | None = None) -> JsonRun | None:
        """The document (``calls_json``); ``progress`` as ``analyze`` takes it. Once only."""
        self.progress = progress
        try:
            return self._run()
        except BaseException:
            self._kill()
            raise

    def _kill(self) -> None:
        """The workers ended now (this side failed, or the reader of the output stopped)."""
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        self.stack.close()

    def _recv(self, conn: Connection) -> Any:
        try:
            message = conn.recv()
        except EOFError:
            raise _WorkerError("a worker process ended unexpectedly") from None
        if message[0] == "error":
            raise message[1]
        return message

    def _gather(self, tag: str) -> list[Any]:
        """One message ``tag`` from every worker, progress reports handled on the way."""
        got: dict[int, Any] = {}
        waiting = {conn: shard for shard, conn in enumerate(self.conns)}
        while waiting:
            for conn in wait(list(waiting)):
                message = self._recv(conn)  # type: ignore[arg-type]
                if message[0] == "progress":
                    if self.progress is not None:
                        self.progress(message[1], message[2])
                    continue
                if message[0] == "facts":
                    facts = list(map(_from_row, message[1]))
                    for f in facts:
                        self.sharing.adopt(f)
                    self.facts[waiting[conn]] += facts  # type: ignore[index]
                    continue
                if message[0] == "retract":  # legs built again (``_Worker.run_retiring``)
                    shard, gone = waiting[conn], set(message[1])  # type: ignore[index]
                    self.facts[shard] = [f for f in self.facts[shard] if f.index not in gone]
                    self.retracted += len(gone)
                    continue
                assert message[0] == tag, message[0]
                got[waiting.pop(conn)] = message[1]  # type: ignore[call-overload]
        return [got[shard] for shard in range(len(self.conns))]

    def _broadcast(self, messages: Sequence[Any]) -> None:
        for conn, message in zip(self.conns, messages, strict=True):
            conn.send(message)

    def _stop_all(self) -> None:
        """The workers told to end (those that have not already), and reaped."""
        for conn in self.conns:
            with suppress(OSError):
                conn.send(("stop",))
        self.stack.close()

    def _run(self) -> JsonRun | None:
        fed = self._gather("fed")
        limit = self.options.max_call_ids or None
        if limit is not None and sum(count for _, count in fed) > limit:
            self._stop_all()
            return None
        ends = [end for end, _ in fed]
        self._broadcast([("end", max(ends))] * len(self.conns))
        shards: list[_ShardLegs] = self._gather("legs")
        plans, owner = self._plan(shards)
        self._broadcast([("plan", plan) for plan in plans])
        del plans
        for s in shards:  # read by the plan only: let them go before the calls come
            s.firsts.clear()
            s.starts.clear()
            s.call_ids.clear()
            s.transfers.clear()
        exports = self._gather("exports")
        imports: list[list[tuple[int, bytes]]] = [[] for _ in self.conns]
        for source, blobs in enumerate(exports):
            for destination, blob in blobs.items():
                imports[destination].append((source, blob))
        self._broadcast([("imports", blobs) for blobs in imports])
        del exports, imports
        built: list[tuple[int, int, tuple[int, ...]]] = self._gather("built")
        selected = {index for _, _, indexes in built for index in indexes}
        malformed = tuple(m for _, m in heapq.merge(*(s.malformed for s in shards), key=itemgetter(0)))
        summary = replace(
            shards[0].summary,
            sip_messages=sum(s.summary.sip_messages for s in shards),
            malformed=len(malformed),
            retransmissions=sum(s.summary.retransmissions for s in shards),
            duplicates=sum(s.summary.duplicates for s in shards),
            doubled=sum(s.summary.doubled for s in shards),
            first_time=min((s.summary.first_time for s in shards if s.summary.first_time is not None),
                           default=None),
            last_time=max((s.summary.last_time for s in shards if s.summary.last_time is not None),
                          default=None),
            calls=sum(calls for calls, _, _ in built),
            items=sum(items for _, items, _ in built),
        )  # fmt: skip
        analysis = Analysis(
            files=self.names,
            summary=summary,
            calls=(),
            messages=(),
            malformed=malformed,
            transactions=(),
            dialogs=(),
            warnings=shards[0].warnings,
        )
        order = [owner[index] for index in sorted(selected)]
        pieces = iter_document(analysis, self._entries(order), indent=self.indent)
        assert pieces is not None  # the skeleton holds the marker once
        return JsonRun(analysis, self._closing(pieces))

    def _closing(self, pieces: Iterator[str]) -> Iterator[str]:
        finished = False
        try:
            yield from pieces
            finished = True
        finally:
            if finished:
                self.stack.close()
            else:
                self._kill()

    def _entries(self, order: Sequence[int]) -> Iterator[str]:
        """The rendered calls, taken from each owner in the order of ``order`` (the owner of
        each selected call, by call index)."""
        buffers: list[list[str]] = [[] for _ in self.conns]
        for shard in order:
            buffer = buffers[shard]
            if not buffer:
                message = self._recv(self.conns[shard])
                assert message[0] == "entries", message[0]
                buffer.extend(reversed(message[1]))
            yield buffer.pop()

    def _plan(self, shards: Sequence[_ShardLegs]) -> tuple[list[_Plan], list[int]]:
        """The calls, correlated from every shard's facts: which worker builds each, and the
        legs each worker hands to another."""
        order = sorted(
            ((first, shard, local) for shard, s in enumerate(shards) for local, first in enumerate(s.firsts)),
        )
        where = [(shard, local) for _, shard, local in order]
        # A first message is one shard's: its place in the input names the leg among all.
        position = {first: index for index, (first, _, _) in enumerate(order)}
        del order
        starts = [shards[shard].starts[local] for shard, local in where]
        call_ids = [shards[shard].call_ids[local] for shard, local in where]
        facts: list[_LegFacts] = []
        for shard_facts in self.facts:
            for f in shard_facts:
                f.index = position[f.index]
            facts += shard_facts
        del position
        self.facts, self.sharing = [], Sharing()
        facts.sort(key=lambda f: f.index)
        correlation = self.options.correlation or CorrelationOptions()
        groups = correlate_facts(facts, starts, correlation)
        related: dict[str, set[str]] = {}
        if correlation.enabled:
            related = related_from_facts(
                [t for s in shards for t in s.transfers], set(call_ids),
                lambda: ((f.exit_at, f.to_user, f.call_id) for f in facts),
            )  # fmt: skip
        # The plans are made in the facts' room, each call's group let go once planned.
        facts.clear()
        del starts
        plans = [_Plan([], defaultdict(list)) for _ in shards]
        owner = [-1]
        """The worker that builds each call, by call index (from 1)."""
        groups.reverse()
        index = 0
        while groups:
            members, links = groups.pop()
            index += 1
            others: tuple[str, ...] = ()
            if related and any(call_ids[m] in related for m in members):
                ids = {call_ids[m] for m in members}
                others = tuple(sorted({r for m in members for r in related.get(call_ids[m], ())} - ids))
            home = where[members[0]][0]
            owner.append(home)
            plans[home].calls.append((index, tuple([where[m] for m in members]), links, others))
            for m in members:
                shard, local = where[m]
                if shard != home:
                    plans[shard].exports[home].append(local)
        return plans, owner


@dataclass(slots=True)
class _Plan:
    """What one worker is to do: the calls it builds (index, its legs as (shard, leg number),
    links, related Call-IDs) and, by worker, the numbers of its legs that worker needs."""

    calls: list[tuple[int, tuple[tuple[int, int], ...], tuple[Link, ...], tuple[str, ...]]]
    exports: dict[int, list[int]]


@dataclass(frozen=True, slots=True)
class _ShardLegs:
    """One worker's legs as correlation reads them, and its part of the summary."""

    firsts: list[int]
    """Each leg's first message's index (its place in the merged input), in leg order."""
    starts: list[float]
    call_ids: list[str]
    transfers: list[TransferFacts]
    """Of the legs that say something about a transfer."""
    summary: Summary
    """Counted over this shard (``calls`` and ``items`` not yet)."""
    malformed: list[tuple[int, Malformed]]
    """This shard's malformed packets, each with its place in the merged input."""
    warnings: tuple[CaptureWarning, ...]


@dataclass(frozen=True, slots=True)
class _Kept:
    """A leg as ``_Worker.run_retiring`` keeps it once built: what the calls read of it."""

    start: float
    """``Leg.start``."""
    outline: LegOutline
    text: LegText
    """Its ``leg_text``."""


def _stop(process: multiprocessing.process.BaseProcess) -> None:
    process.join(timeout=5)
    if process.is_alive():
        process.terminate()
        process.join()


def _work(
    conn: Connection,
    names: tuple[str, ...],
    options: AnalysisOptions,
    selection: dict[str, Any],
    indent: int | None,
    shard: int,
    shards: int,
) -> None:
    """A worker's life (see the module's docstring); any failure is sent, then the end.

    Once all is sent, the process ends at once (``os._exit``), the model it built still held:
    freeing it object by object would take a second of a large capture's run, while the
    coordinator waits for the workers to end before it finishes the document."""
    try:
        with gc_paused():
            _held = _Worker(conn, names, options, shard, shards).run(selection, indent)
            for stream in (sys.stdout, sys.stderr):
                with suppress(OSError, ValueError):
                    stream.flush()
            conn.close()
            os._exit(0)
    except BaseException as exc:  # handed to the coordinator, raised there
        try:
            pickle.dumps(exc)
            conn.send(("error", exc))
        except Exception:
            conn.send(("error", _WorkerError(traceback.format_exc())))
    finally:
        conn.close()


class _Worker:
    def __init__(
        self, conn: Connection, names: tuple[str, ...], options: AnalysisOptions, shard: int, shards: int
    ) -> None:
        self.conn, self.names, self.options = conn, names, options
        self.shard, self.shards = shard, shards
        self.malformed_seqs: list[int] = []
        """The place in the merged input of each malformed packet tracked, in order."""
        self.keep: Callable[[Leg], None] | None = None
        """Where the legs retired while reading go (``run_retiring``); None: none retired."""
        self.reopened: set[str] = set()
        """Call-IDs with a message after their leg was retired (``run_retiring``)."""
        self._until_retire = _RETIRE_EVERY

    def _expect(self, tag: str) -> Any:
        message = self.conn.recv()
        if message[0] == "stop":
            raise SystemExit(0)
        assert message[0] == tag, message[0]
        return message[1]

    def run(self, selection: dict[str, Any], indent: int | None) -> object:
        """The worker's side of the run; returns what it built (``_work`` ends the process
        without freeing it)."""
        if indent is None and _decided_by_outcome(selection):
            return self.run_retiring(selection)
        conn = self.conn
        with ExitStack() as stack:
            readers = [stack.enter_context(CaptureReader(name)) for name in self.names]
            tracker, dedupe, points, skews = self._read(readers)
            conn.send(("fed", (tracker.last_time, tracker.leg_count)))
            end = self._expect("end")
            model = tracker.finish(end, release=True)
            del tracker
            legs = sorted(model.legs, key=lambda leg: leg.messages[0].index)
            summary = summarize(self.names, readers, points, skews, dedupe, model, calls=())
            warnings = tuple(w for r in readers for w in r.warnings)
            malformed = list(zip(self.malformed_seqs, model.malformed, strict=True))
            del model
        correlation = self.options.correlation or CorrelationOptions()
        # Of the legs with an initial INVITE, their ``_LegFacts`` as rows, ``index`` the place
        # of the leg's first message: sent in batches, read by the coordinator meanwhile.
        facts: list[_FactRow] = []
        transfers = []
        if correlation.enabled:
            sharing = Sharing()  # one per batch: a pickle writes an object once within itself
            for leg in legs:
                f = _facts(leg.messages[0].index, leg, correlation.headers)
                if f is not None:
                    facts.append(_detached_row(f, sharing))
                    if len(facts) == _FACTS_BATCH:
                        conn.send(("facts", facts))
                        facts, sharing = [], Sharing()
                t = transfer_facts(leg)
                if t.replaces or t.refers:
                    transfers.append(t)
            if facts:
                conn.send(("facts", facts))
        conn.send(("legs", _ShardLegs(
            firsts=[leg.messages[0].index for leg in legs], starts=[leg.start for leg in legs],
            call_ids=[leg.call_id for leg in legs], transfers=transfers, summary=summary,
            malformed=malformed, warnings=warnings,
        )))  # fmt: skip
        del facts, transfers
        # While the coordinator plans, this core would wait: each leg's JSON is made meanwhile.
        texts: list[LegText | None] = [None] * len(legs)

        def text_of(local: int) -> None:
            texts[local] = leg_text(legs[local])

        plan: _Plan = (
            self._expect("plan") if indent is not None else self._render_ahead("plan", len(legs), text_of)
        )
        # A call whose legs are held here and elsewhere is built by the holder of its first
        # leg. Where the selection needs no more of a call than its outcome (the usual case),
        # each other holder sends its legs' outlines and JSON, else the legs themselves.
        outlined = indent is None and _decided_by_outcome(selection)

        def outline_of(local: int) -> tuple[LegOutline, str]:
            """A leg held here, as a call decided from outlines takes it: its outline and JSON."""
            leg = legs[local]
            return leg_outline(leg), member_text(leg, texts[local] or leg_text(leg))

        def exported(local: int) -> object:
            return outline_of(local) if outlined else legs[local]

        exports = {
            destination: pickle.dumps(
                [(local, exported(local)) for local in locals_], pickle.HIGHEST_PROTOCOL
            )
            for destination, locals_ in plan.exports.items()
        }
        conn.send(("exports", exports))
        del exports
        for locals_ in plan.exports.values():
            for local in locals_:  # its call is built elsewhere: not needed here again
                legs[local] = None  # type: ignore[call-overload]
        imported: dict[tuple[int, int], Any] = {}
        """A leg of another worker (``outlined``: its outline and JSON), by (worker, number there)."""
        blobs: list[tuple[int, bytes]] = self._expect("imports")
        while blobs:
            source, blob = blobs.pop()
            imported.update(((source, local), leg) for local, leg in pickle.loads(blob))
            del blob

        def leg_of(key: tuple[int, int]) -> Leg:
            shard, local = key
            return legs[local] if shard == self.shard else imported[key]

        def entry(call: Call, members: Sequence[tuple[int, int]]) -> str:
            found = [texts[local] if shard == self.shard else None for shard, local in members]
            if indent is None and all(text is not None for text in found):
                return entry_text_of(call, found)  # type: ignore[arg-type]  # none is None
            return entry_text(call, indent=indent)

        def outlined_entry(
            index: int, members: Sequence[tuple[int, int]], links: Any, others: Any
        ) -> tuple[CallOutcome, list[str]]:
            pieces = [
                outline_of(local) if shard == self.shard else imported[(shard, local)]
                for shard, local in members
            ]
            outlines = [outline for outline, _ in pieces]
            return call_outcome(index, outlines, links, others), [part for _, part in pieces]

        matches = call_filter(**selection)
        decided = outcome_filter(**{k: v for k, v in selection.items() if k in _OUTCOME_KEYS})
        calls: list[tuple[int, Callable[[], str]]] = []
        """The selected calls' indexes, each with what renders it."""
        counted = items = 0
        for index, members, links, others in plan.calls:
            items += 1
            if outlined and any(shard != self.shard for shard, _ in members):
                outcome, parts = outlined_entry(index, members, links, others)
                counted += outcome.kind is CallKind.CALL
                if decided(outcome):
                    calls.append((index, partial(outlined_entry_text, outcome, parts)))
                continue
            call = build_call(index, tuple(leg_of(m) for m in members), links, others)
            counted += call.kind is CallKind.CALL
            if matches(call):
                calls.append((index, partial(entry, call, members)))
        conn.send(("built", (counted, items, tuple(index for index, _ in calls))))
        for start in range(0, len(calls), _BATCH):
            batch = calls[start : start + _BATCH]
            conn.send(("entries", [render() for _, render in batch]))
            for i in range(start, start + len(batch)):
                calls[i] = None  # type: ignore[call-overload]  # rendered: let it go
        return legs, imported

    def run_retiring(self, selection: dict[str, Any]) -> object:
        """``run`` where every call is decided from its legs' outlines (the selection needs no
        more, the JSON is compact): a leg that is over while the input is still read is
        retired (``Tracker.retire``) and kept only as what correlation, the call and the JSON
        read of it (``_Kept``), so the worker holds the calls up at once, not the capture. A
        Call-ID with a message after its leg was retired is built again from the start, in a
        second reading of the input that parses only such Call-IDs."""
        conn = self.conn
        correlation = self.options.correlation or CorrelationOptions()
        kept: dict[int, _Kept] = {}
        """By the place of the leg's first message in the merged input."""
        transfers: dict[int, TransferFacts] = {}
        batch: list[_FactRow] = []
        sharing = Sharing()  # one per batch: a pickle writes an object once within itself

        def send_facts() -> None:
            nonlocal batch, sharing
            if batch:
                conn.send(("facts", batch))
                batch, sharing = [], Sharing()

        def keep(leg: Leg) -> None:
            first = leg.messages[0].index
            if correlation.enabled:
                f = _facts(first, leg, correlation.headers)
                if f is not None:
                    batch.append(_detached_row(f, sharing))
                    if len(batch) == _FACTS_BATCH:
                        send_facts()
                t = transfer_facts(leg)
                if t.replaces or t.refers:
                    transfers[first] = t
            kept[first] = _Kept(leg.start, leg_outline(leg), leg_text(leg))

        with ExitStack() as stack:
            readers = [stack.enter_context(CaptureReader(name)) for name in self.names]
            self.keep = keep
            tracker, dedupe, points, skews = self._read(readers, retiring=True)
            self.keep = None
            again: Tracker | None = None
            if self.reopened:
                rereaders = [stack.enter_context(CaptureReader(name)) for name in self.names]
                again = self._read(rereaders, only=frozenset(self.reopened))[0]
            last = max(tracker.last_time, again.last_time if again is not None else 0.0)
            conn.send(("fed", (last, len(kept) + tracker.leg_count)))
            end = self._expect("end")
            if self.reopened:
                send_facts()
                gone = [first for first, k in kept.items() if k.outline.call_id in self.reopened]
                for first in gone:
                    del kept[first]
                    transfers.pop(first, None)
                conn.send(("retract", gone))
            model = tracker.finish(end, release=True)
            del tracker
            for leg in model.legs:
                keep(leg)
            if again is not None:
                for leg in again.finish(end, release=True).legs:
                    keep(leg)
                del again
            send_facts()
            outlines = [k.outline for k in kept.values()]
            tally = Tally(
                sum(o.messages for o in outlines),
                sum(o.retransmissions for o in outlines),
                min((o.start for o in outlines), default=None),
                max((o.end for o in outlines), default=None),
            )
            del outlines
            summary = summarize(self.names, readers, points, skews, dedupe, model, calls=(), tally=tally)
            warnings = tuple(w for r in readers for w in r.warnings)
            malformed = list(zip(self.malformed_seqs, model.malformed, strict=True))
            del model
        firsts = sorted(kept)
        outlines = [kept[first].outline for first in firsts]
        texts: list[LegText | None] = [kept[first].text for first in firsts]
        conn.send(("legs", _ShardLegs(
            firsts=firsts, starts=[kept[first].start for first in firsts],
            call_ids=[o.call_id for o in outlines],
            transfers=[transfers[first] for first in firsts if first in transfers], summary=summary,
            malformed=malformed, warnings=warnings,
        )))  # fmt: skip
        kept.clear()
        transfers.clear()
        del firsts
        # While the coordinator plans, this core would wait: each leg's entry as a call of its
        # own is made meanwhile, but for its number (``single_entry_cut``), in place of its text.
        cuts: list[EntryCut | None] = [None] * len(outlines)

        def cut_of(local: int) -> None:
            text = texts[local]
            assert text is not None
            cuts[local] = single_entry_cut(call_outcome(0, (outlines[local],)), text)
            texts[local] = None

        plan: _Plan = self._render_ahead("plan", len(outlines), cut_of)

        def member(local: int) -> str:
            """A leg held here, in a call of several legs: its JSON."""
            cut = cuts[local]
            if cut is not None:
                return cut.member
            text = texts[local]
            assert text is not None
            return outline_member_text(outlines[local], text)

        exports = {
            destination: pickle.dumps(
                [(local, (outlines[local], member(local))) for local in locals_], pickle.HIGHEST_PROTOCOL
            )
            for destination, locals_ in plan.exports.items()
        }
        conn.send(("exports", exports))
        del exports
        for locals_ in plan.exports.values():
            for local in locals_:  # its call is built elsewhere: not needed here again
                texts[local] = cuts[local] = None
        imported: dict[tuple[int, int], tuple[LegOutline, str]] = {}
        """A leg of another worker: its outline and JSON, by (worker, number there)."""
        blobs: list[tuple[int, bytes]] = self._expect("imports")
        while blobs:
            source, blob = blobs.pop()
            imported.update(((source, local), leg) for local, leg in pickle.loads(blob))
            del blob
        decided = outcome_filter(**{k: v for k, v in selection.items() if k in _OUTCOME_KEYS})
        entries: list[str] = []
        """The selected calls' entries, in order."""
        selected: list[int] = []
        counted = items = 0
        for index, members, links, others in plan.calls:
            items += 1
            if len(members) == 1:
                ((_, local),) = members
                outcome = call_outcome(index, (outlines[local],), links, others)
                if decided(outcome):
                    cut = cuts[local]
                    if cut is not None and not others:
                        entries.append(cut.numbered(index))
                    else:
                        entries.append(single_entry_text(outcome, member(local)))
            else:
                pieces = [
                    (outlines[local], member(local)) if shard == self.shard else imported.pop((shard, local))
                    for shard, local in members
                ]
                outcome = call_outcome(index, [outline for outline, _ in pieces], links, others)
                if decided(outcome):
                    entries.append(outlined_entry_text(outcome, [part for _, part in pieces]))
            for shard, local in members:
                if shard == self.shard:
                    texts[local] = cuts[local] = None  # rendered, or not selected
            counted += outcome.kind is CallKind.CALL
            if decided(outcome):
                selected.append(index)
        conn.send(("built", (counted, items, tuple(selected))))
        for start in range(0, len(entries), _BATCH):
            conn.send(("entries", entries[start : start + _BATCH]))
            for i in range(start, min(start + _BATCH, len(entries))):
                entries[i] = ""  # sent: let it go
        return None

    def _render_ahead(self, tag: str, count: int, render: Callable[[int], None]) -> Any:
        """``_expect(tag)``; until it comes, ``render(local)`` for each leg here, in order (what
        this core would otherwise wait through)."""
        with suppress(OSError):
            os.nice(10)  # the coordinator's plan goes first: it is what everyone waits for
        done = 0
        while done < count and not self.conn.poll():
            for local in range(done, min(done + _AHEAD, count)):
                render(local)
            done += _AHEAD
        return self._expect(tag)

    def _read(
        self, readers: list[CaptureReader], *, retiring: bool = False, only: frozenset[str] | None = None
    ) -> tuple[Tracker, Deduplicator[tuple[int, Parsed]], CapturePoints, dict[str, float]]:
        """Every message of the input read and parsed; this shard's deduped and tracked.

        ``retiring``: the legs that are over are handed to ``self.keep`` as the input is read,
        and the messages of a Call-ID retired are left out (``self.reopened`` has it). ``only``:
        of the shard's messages, those of these Call-IDs, and no malformed packet (the second
        reading of ``run_retiring``)."""
        points = CapturePoints(readers)
        skews = _skews(points, _given_skews(points, self.options.skew))
        dedupe: Deduplicator[tuple[int, Parsed]] = Deduplicator(points=points.pairs)
        keyed = len(points.names) > 1
        tracker = Tracker(retiring=retiring)
        shard, shards = self.shard, self.shards
        total = sum(r.size for r in readers)
        report = self.conn.send if shard == 0 and only is None else None
        sources = [(r.name, _owned(r, shard, shards, only)) for r in readers]
        for seq, (packet, item) in enumerate(_merged(sources, points, skews)):
            if item is not None:
                for merged in dedupe.push(packet, (seq, item), dedupe_key(packet, item, keyed)):
                    self._track(tracker, merged.packet, merged.item, merged.copies)
            if report is not None and not seq % (_PROGRESS_EVERY * 8):
                report(("progress", sum(r.position for r in readers), total))
        for merged in dedupe.flush():
            self._track(tracker, merged.packet, merged.item, merged.copies)
        return tracker, dedupe, points, skews

    def _track(
        self,
        tracker: Tracker,
        packet: SipPayload,
        item: tuple[int, Parsed],
        copies: tuple[tuple[str, int], ...],
    ) -> None:
        """``pipeline._feed`` for one message of a shard, numbered by its place in the input."""
        seq, parsed = item
        if isinstance(parsed, ParseFailure):
            tracker.feed_malformed(packet, parsed.reason)
            self.malformed_seqs.append(seq)
            return
        keep = self.keep
        if keep is None:
            tracker.feed(packet, parsed, copies=copies, index=seq)
            return
        if tracker.has_retired(parsed.call_id):
            self.reopened.add(parsed.call_id or "")
            return
        tracker.feed(packet, parsed, copies=copies, index=seq)
        self._until_retire -= 1
        if not self._until_retire:
            self._until_retire = _RETIRE_EVERY
            for leg in tracker.retire():
                keep(leg)


class ShardingError(SipflowError):
    """A message's Call-ID read alone was not the one parsing gave it (a defect of
    ``call_id_hint``): its leg could be split between workers, so the sharded run stops (the
    CLI then runs in one process)."""


_OUTCOME_KEYS: Final = frozenset(inspect.signature(outcome_filter).parameters)
"""The selection's arguments that ``outcome_filter`` takes: what a call's outcome decides."""


def _decided_by_outcome(selection: dict[str, Any]) -> bool:
    """Whether ``call_filter(**selection)`` needs no more of a call than its outcome."""
    return all(k in _OUTCOME_KEYS or not v for k, v in selection.items())


def _owned(
    reader: CaptureReader, shard: int, shards: int, only: frozenset[str] | None = None
) -> Iterator[tuple[SipPayload, Parsed | None]]:
    """Every packet of ``reader``, each with its parsed SIP where it is ``shard``'s, else None;
    with ``only``, where it is also one of these Call-IDs' (and never a malformed one).

    A message is the shard's whose Call-ID hashes to it (str hashes agree between the workers:
    forked, they share the hash seed). Where ``call_id_hint`` reads the Call-ID, only its
    shard parses the message; where it does not, every worker parses it, and one that no parse
    makes sense of is the first shard's."""
    hint = call_id_hint
    packets = iter(reader)
    while batch := list(itertools.islice(packets, BATCH)):
        pairs: list[tuple[SipPayload, Parsed | None]] = []
        for packet in batch:
            call_id = None if hint is None or packet.truncated else hint(packet.payload)
            if call_id is None:
                parsed = parse_or_failure(packet)
                if isinstance(parsed, ParseFailure):
                    mine = shard == 0 and only is None
                else:
                    mine = hash(parsed.call_id or "") % shards == shard
                    mine = mine and (only is None or (parsed.call_id or "") in only)
                pairs.append((packet, parsed if mine else None))
            elif hash(call_id) % shards == shard and (only is None or call_id in only):
                parsed = parse_or_failure(packet)
                if isinstance(parsed, ParseFailure):
                    pairs.append((packet, parsed if only is None else None))
                    continue
                if parsed.call_id != call_id:
                    raise ShardingError(
                        f"{reader.name}: frame {packet.frame}: the Call-ID read alone ({call_id!r}) is not "
                        f"the parsed one ({parsed.call_id!r}); run with --jobs 1"
                    )
                pairs.append((packet, parsed))
            else:
                pairs.append((packet, None))
        yield from pairs


__all__ = ["MIN_BYTES", "JsonRun", "Sharded", "ShardingError", "calls_json", "shard_count", "start"]
