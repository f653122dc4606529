"""The pipeline as one function: ``analyze(paths) -> Analysis``.

files ──► capture.CaptureReader ──► SipPayload ──► sip.parse_message ──► model.Tracker ──► calls
"""

from __future__ import annotations

import gc
import heapq
import itertools
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Final, TypeVar

from sipflow.capture.reader import STDIN, CaptureReader
from sipflow.capture.types import CaptureSource, CaptureStats, CaptureWarning, SipPayload
from sipflow.correlate import CorrelationOptions, correlate, related_calls
from sipflow.errors import ParseError, UsageError
from sipflow.media.collector import RtpStream, StreamCollector
from sipflow.merge import PRESCAN_PACKETS, Deduplicator, DuplicateKey, Merged, duplicate_key, estimate_skew
from sipflow.model.analysis import Analysis, CapturePoint, Summary
from sipflow.model.call import Call, CallKind, Leg, build_call
from sipflow.model.tracker import ModelResult, Tally, Tracker
from sipflow.readahead import (
    Parsed,
    ParseFailure,
    WorkerSource,
    read_parsed,
)
from sipflow.sip.message import SipRequest, SipResponse
from sipflow.sip.parse import parse_message

Progress = Callable[[int, int], None]
"""Called now and then with (bytes read so far, bytes in all files)."""

_PROGRESS_EVERY = 512
"""Packets between two progress reports."""


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while the model grows.

    The analysis builds millions of long-lived, acyclic objects; CPython's generational
    collector would rescan them again and again (measured: half the run time on a
    100,000-message capture). Reference counting still frees everything as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class CapturePoints:
    """The capture points of the files being read, and their names.

    A file is one capture point named as the file, unless its pcapng head describes several
    interfaces: then each interface is one, named ``FILE#N`` (N its interface id)."""

    def __init__(self, readers: Sequence[CaptureSource]) -> None:
        self.multi = {r.name: len(r.interfaces) > 1 for r in readers}
        self.reopenable = {r.name for r in readers if r.reopenable}
        """The files that can be read again (not standard input or another pipe)."""
        self.interface_names = {r.name: r.interfaces for r in readers}
        self.by_file: dict[str, tuple[str, ...]] = {}
        for r in readers:
            count = len(r.interfaces)
            names = tuple(f"{r.name}#{i}" for i in range(count)) if count > 1 else (r.name,)
            self.by_file.setdefault(r.name, names)
        self.names: tuple[str, ...] = tuple(n for names in self.by_file.values() for n in names)
        self.pairs: tuple[tuple[str, int], ...] = tuple(
            (file, i) for file, names in self.by_file.items() for i in range(len(names))
        )
        """(file, interface) of each named point, in order."""

    def name(self, file: str, interface: int) -> str:
        if interface or self.multi.get(file, False):
            return f"{file}#{interface}"
        return file

    def list(self, skews: Mapping[str, float], seen: Iterable[tuple[str, int]]) -> tuple[CapturePoint, ...]:
        """Every capture point (those of the files' heads and any seen later), in order."""
        pairs = dict.fromkeys(
            [(f, i) for f, names in self.interface_names.items() for i in range(len(names))]
        )
        pairs.update(dict.fromkeys(sorted(set(seen) - set(pairs))))
        out = []
        for file, interface in pairs:
            names = self.interface_names.get(file, ())
            name = self.name(file, interface)
            out.append(
                CapturePoint(
                    name=name,
                    file=file,
                    interface=interface,
                    interface_name=names[interface] if interface < len(names) else "",
                    skew=skews.get(name, 0.0),
                )
            )
        return tuple(out)


_T = TypeVar("_T")
_Pairs = Iterable[tuple[SipPayload, _T]]
"""A file's packets with what was made of each: its parsed SIP (``sipflow.readahead``), or in a
shard worker None for another worker's message."""


def _merged(
    sources: Sequence[tuple[str, _Pairs[_T]]], points: CapturePoints, skews: Mapping[str, float]
) -> Iterator[tuple[SipPayload, _T]]:
    streams = [_shifted(name, pairs, points, skews) for name, pairs in sources]
    if len(streams) == 1:
        return streams[0]
    # On the microsecond: the same message in two files, its skew taken out, ties with itself
    # and comes first from the earlier file (heapq.merge is stable), float noise aside.
    return heapq.merge(*streams, key=lambda pair: round(pair[0].timestamp, 6))


_QUIET: Final = 0.25
"""Seconds without a packet from a live input after which ``analyze`` looks up (``_arrivals``)."""


def _arrivals(
    sources: Sequence[tuple[str, _Pairs[Parsed]]],
    points: CapturePoints,
    skews: Mapping[str, float],
    stack: ExitStack,
) -> Iterator[tuple[SipPayload, Parsed] | None]:
    """Every source's pairs in the order they arrive, each source read by a thread of its own;
    None whenever ``_QUIET`` seconds pass without one. The threads end with their inputs (a
    live capture's, when its writer stops)."""
    arrived: queue.Queue[tuple[SipPayload, Parsed] | BaseException | None] = queue.Queue(maxsize=1 << 14)
    closing = threading.Event()

    def read(pairs: Iterator[tuple[SipPayload, Parsed]]) -> None:
        try:
            for pair in pairs:
                while not closing.is_set():
                    try:
                        arrived.put(pair, timeout=_QUIET)
                        break
                    except queue.Full:
                        continue
                if closing.is_set():
                    return
            arrived.put(None)
        except BaseException as exc:  # handed to the reading thread, raised there
            arrived.put(exc)

    stack.callback(closing.set)
    threads = [
        threading.Thread(target=read, args=(_shifted(name, pairs, points, skews),), daemon=True)
        for name, pairs in sources
    ]
    for thread in threads:
        thread.start()
    running = len(threads)
    while running:
        try:
            got = arrived.get(timeout=_QUIET)
        except queue.Empty:
            yield None
            continue
        if got is None:
            running -= 1
        elif isinstance(got, BaseException):
            raise got
        else:
            yield got


def _shifted(
    file: str, pairs: _Pairs[_T], points: CapturePoints, skews: Mapping[str, float]
) -> Iterator[tuple[SipPayload, _T]]:
    """A file's pairs with each capture point's skew taken out, in time order again."""
    own = {n: skews[n] for n in points.by_file.get(file, ()) if n in skews}
    if not own:
        yield from pairs
        return
    if not points.multi.get(file, False):
        skew = own.get(file)
        for packet, item in pairs:
            if packet.interface == 0 and skew is not None:
                yield replace(packet, timestamp=packet.timestamp - skew), item
            else:
                yield packet, item
        return
    # Interfaces with different clocks in one file: a packet read at raw time R has a later
    # one at no less than R - lead once shifted, so what is older than that can go.
    lead = max(0.0, *own.values())
    held: list[tuple[float, int, tuple[SipPayload, _T]]] = []
    name = points.name
    for seq, (packet, item) in enumerate(pairs):
        raw = packet.timestamp
        skew = own.get(name(packet.file, packet.interface), 0.0)
        if skew:
            packet = replace(packet, timestamp=raw - skew)
        heapq.heappush(held, (round(packet.timestamp, 6), seq, (packet, item)))
        while held and held[0][0] < raw - lead:
            yield heapq.heappop(held)[2]
    while held:
        yield heapq.heappop(held)[2]


def _given_skews(points: CapturePoints, skew: Mapping[str, float] | None) -> dict[str, float]:
    """The user's skews by capture point: keyed ``FILE`` (every interface of the file) or
    ``FILE#N`` (interface N), FILE as given or by its basename."""
    out: dict[str, float] = {}
    files = list(points.by_file)
    for key, value in (skew or {}).items():
        if not math.isfinite(value):
            raise UsageError(f"skew for {key}: {value} is not a number of seconds")
        file_part, interface = key, None
        if key not in files and "#" in key:
            head, _, tail = key.rpartition("#")
            if tail.isdigit():
                file_part, interface = head, int(tail)
        if file_part in files:
            matches = {file_part}
        else:
            matches = {n for n in files if os.path.basename(n) == file_part}
        if not matches:
            raise UsageError(f"skew given for {key}, which is not one of the files")
        if len(matches) > 1:
            raise UsageError(f"skew given for {key}: several files have that name, give its path")
        file = matches.pop()
        if interface is None:
            for name in points.by_file[file]:
                out[name] = value
            continue
        name = points.name(file, interface)
        if interface == 0 and not points.multi[file]:
            name = file
        elif name not in points.by_file[file]:
            raise UsageError(f"skew given for {key}: {file} has no interface {interface}")
        out[name] = value
    return out


def _prescan(points: CapturePoints) -> Iterator[tuple[str, DuplicateKey, float]]:
    """(capture point, key, time) of the first SIP packets of each file, for ``estimate_skew``."""
    for file in points.by_file:
        if file not in points.reopenable:
            continue  # a pipe is read once: the others' skews are estimated among themselves
        with CaptureReader(file) as reader:
            for packet in itertools.islice(reader, PRESCAN_PACKETS):
                try:
                    sip = parse_message(packet.payload)
                except ParseError:
                    continue
                key = duplicate_key(packet, sip)
                if key is not None:
                    yield points.name(file, packet.interface), key, packet.timestamp


def _skews(points: CapturePoints, given: Mapping[str, float]) -> dict[str, float]:
    """Each capture point's clock skew (given, else estimated from messages it shares with
    the others), nonzero only."""
    names = points.names
    if len(names) > 1 and any(n not in given for n in names[1:]):
        given = estimate_skew(_prescan(points), names, fixed=given)
    return {n: v for n, v in given.items() if v}


DEFAULT_MAX_CALL_IDS = 1_000_000
"""Call-IDs analysed by default. A flood of one-message Call-IDs (a scanner, a broken
client) costs about 2.5 KiB each, so this bounds such junk near 2.5 GiB; real calls are
rarely that many in one capture, and the limit can be raised or lifted."""


class _CallIdLimit:
    """Lets messages through to the tracker until ``limit`` Call-IDs are known; after that,
    only messages of those Call-IDs. Counts what it keeps out and where that began."""

    def __init__(self, tracker: Tracker, limit: int | None) -> None:
        self.tracker = tracker
        self.limit = limit
        self.untracked = 0
        self.first: SipPayload | None = None

    def admits(self, packet: SipPayload, sip: SipRequest | SipResponse) -> bool:
        tracker = self.tracker
        if self.limit is None or tracker.leg_count < self.limit or tracker.has_leg(sip.call_id):
            return True
        self.untracked += 1
        if self.first is None:
            self.first = packet
        return False

    def warning(self) -> CaptureWarning | None:
        if self.first is None:
            return None
        return CaptureWarning(
            file=self.first.file,
            message=f"the limit of {self.limit:,} Call-IDs was reached: {self.untracked:,} SIP messages "
            "from here on with other Call-IDs were not analysed (raise the limit: --max-call-ids, "
            "0 for none)",
            frame=self.first.frame,
        )


def dedupe_key(packet: SipPayload, item: Parsed, keyed: bool) -> Hashable | None:
    """What ``Deduplicator.push`` keys ``packet`` on: with one capture point (not ``keyed``) the
    payload itself, else its ``DuplicateKey`` (None for a payload that is no SIP message)."""
    if not keyed:
        return packet.payload
    return None if isinstance(item, ParseFailure) else duplicate_key(packet, item)


def _feed(tracker: Tracker, released: Iterable[Merged[Parsed]], gate: _CallIdLimit) -> None:
    for merged in released:
        if isinstance(merged.item, ParseFailure):
            tracker.feed_malformed(merged.packet, merged.item.reason)
        elif gate.admits(merged.packet, merged.item):
            tracker.feed(merged.packet, merged.item, copies=merged.copies)


class _Unset:
    """The type of ``_UNSET``: a keyword argument not given."""


_UNSET: Final = _Unset()


def _worker_count(jobs: int | None, files: int) -> int:
    """How many of the files get a worker process of their own.

    None: none. Since a UDP capture's records are decoded and its SIP parsed in C, handing
    the parsed messages over a pipe costs the main process more than reading them itself
    (sip-dense at 0.1x: 3.0 s in one process, 3.5 s with a worker; the mixed capture 0.75 s
    either way; TCP-only 1.29 s against 1.21 s), so a worker is used only when asked for."""
    if jobs is None:
        jobs = 1
    if jobs < 1:
        raise UsageError(f"jobs must be 1 or more, not {jobs}")
    return min(files, jobs - 1)


def _calls(legs: Sequence[Leg], options: CorrelationOptions | None) -> tuple[Call, ...]:
    """One call per group of correlated legs (``sipflow.correlate``), in start order."""
    groups = correlate(legs, options)
    enabled = options is None or options.enabled
    related = related_calls(legs) if enabled else {}
    calls = []
    for index, group in enumerate(groups, start=1):
        ids = {leg.call_id for leg in group.legs}
        others = sorted({r for leg in group.legs for r in related.get(leg.call_id, ())} - ids)
        calls.append(build_call(index, group.legs, group.links, tuple(others)))
    return tuple(calls)


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalysisOptions:
    """How ``analyze`` works, apart from which files and the progress callback: a plain value
    (it pickles), so that a run can be described once and carried out elsewhere (a worker, a
    cluster). The fields are ``analyze``'s keyword arguments of the same names."""

    correlation: CorrelationOptions | None = None
    skew: Mapping[str, float] = field(default_factory=dict)
    max_call_ids: int | None = DEFAULT_MAX_CALL_IDS
    jobs: int | None = 1
    media: bool = False


def _file_names(paths: object) -> tuple[str, ...]:
    """The capture paths of ``analyze``: one path, or an iterable of them."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]  # one file, not its characters
    if isinstance(paths, (bytes, bytearray)) or not isinstance(paths, Iterable):
        raise UsageError(
            f"paths must be a file name or an iterable of file names, not {type(paths).__name__}"
        )
    names: list[str] = []
    for p in paths:
        name = os.fspath(p) if isinstance(p, (str, os.PathLike)) else None
        if not isinstance(name, str) or not name:
            raise UsageError(f"not a file name: {p!r}")
        names.append(name)
    return tuple(names)


def analyze(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    options: AnalysisOptions | None = None,
    *,
    progress: Progress | None = None,
    correlation: CorrelationOptions | None = None,
    skew: Mapping[str, float] | None = None,
    max_call_ids: int | _Unset | None = _UNSET,
    jobs: int | _Unset | None = _UNSET,
    media: bool | _Unset = _UNSET,
    partial: Callable[[Analysis], None] | None = None,
    partial_every: float = 1.0,
    stop: threading.Event | None = None,
) -> Analysis:
    """Read every capture in ``paths`` (one path or several, merged by time; ``-`` is standard
    input, read once as it streams) and build calls from their SIP.

    ``options`` (an ``AnalysisOptions``) or the keyword arguments of the same names say how; a keyword
    argument given replaces the field of ``options``.

    With several files, a message captured in more than one (same hop, within
    ``merge.DEDUPE_WINDOW``) is one message with ``copies``. ``skew`` maps a file (its name
    as in ``paths``, or its basename) to the seconds its clock runs ahead of the first
    file's, subtracted from its timestamps; for the other files it is estimated from the
    messages they share (``merge.estimate_skew``). Raises ``UsageError`` for a skew naming
    no file.

    Once ``max_call_ids`` distinct Call-IDs are known (None or 0: no limit), messages with
    further Call-IDs are left out, counted in ``Summary.untracked`` and named in a warning,
    and the result is partial; messages of the known Call-IDs are still analysed.

    ``jobs`` is how many processes may work: with 2 or more, up to ``jobs - 1`` files are
    each read and parsed by a worker process (``sipflow.readahead``) while this one builds
    the model; the result is the same. None: one process (``_worker_count`` says why).

    ``partial``, when given, is handed the analysis of what was read so far (its summary
    ``partial``) every ``partial_every`` seconds or more while the files are read: what a
    browser shows as its list fills. Each costs about what the whole analysis of those
    messages costs, so they come no more often than every four times the last one took.

    A stream (a pipe from ``tcpdump -w -``, a live capture) is read as its packets come: with
    ``partial``, a partial analysis follows new packets within about ``partial_every`` seconds
    even when nothing more arrives. With a stream among several inputs, the packets are taken
    in the order they arrive rather than merged by time. ``stop``, once set, ends the reading
    early (checked as packets come and every quarter second): the result then holds what was
    read.

    Raises ``CaptureError`` for a file that cannot be opened or is not a capture. Damage
    inside a file (a truncated last record, a bad packet) is reported in ``warnings`` and
    everything readable is analysed.
    """
    options = options or AnalysisOptions()
    correlation = correlation if correlation is not None else options.correlation
    skew = skew if skew is not None else options.skew
    if isinstance(max_call_ids, _Unset):
        max_call_ids = options.max_call_ids
    if isinstance(jobs, _Unset):
        jobs = options.jobs
    if isinstance(media, _Unset):
        media = options.media
    names = _file_names(paths)
    if names.count(STDIN) > 1:
        raise UsageError("standard input (-) can be read only once")
    if max_call_ids is not None and max_call_ids < 0:
        raise UsageError(f"max_call_ids must be 0 (no limit) or more, not {max_call_ids}")

    def open_files(stack: ExitStack, collectors: Mapping[str, StreamCollector]) -> list[CaptureSource]:
        return [stack.enter_context(CaptureReader(name, sink=collectors.get(name))) for name in names]

    return _analyze(
        names, open_files, correlation=correlation, skew=skew, max_call_ids=max_call_ids, jobs=jobs,
        media=media, progress=progress, partial=partial, partial_every=partial_every, stop=stop,
    )  # fmt: skip


def analyze_sources(
    sources: Sequence[CaptureSource],
    options: AnalysisOptions | None = None,
    *,
    progress: Progress | None = None,
    capture_end: float | None = None,
) -> Analysis:
    """``analyze`` over captures already open: each of ``sources`` (``CaptureSource``: the
    packets of a file kept in an archive, say) is read once, in this process, in the order
    given, and merged by time with the others as ``analyze`` merges files. ``options.media``
    and ``options.jobs`` are not used (the sources hold SIP only).

    ``capture_end``: when the captures ended, which drives the protocol timers (a request
    unanswered for 32 s has timed out); default the last packet's time. Sources holding some
    of a capture's Call-IDs give those Call-IDs' calls exactly as the whole capture would,
    given the whole capture's end."""
    options = options or AnalysisOptions()
    names = tuple(source.name for source in sources)
    if len(set(names)) != len(names):
        raise UsageError("every source must have a name of its own")

    def given(stack: ExitStack, collectors: Mapping[str, StreamCollector]) -> list[CaptureSource]:
        return list(sources)

    return _analyze(
        names, given, correlation=options.correlation, skew=options.skew, max_call_ids=options.max_call_ids,
        jobs=1, media=False, progress=progress, capture_end=capture_end,
    )  # fmt: skip


def _analyze(
    names: tuple[str, ...],
    open_sources: Callable[[ExitStack, Mapping[str, StreamCollector]], list[CaptureSource]],
    *,
    correlation: CorrelationOptions | None,
    skew: Mapping[str, float],
    max_call_ids: int | None,
    jobs: int | None,
    media: bool,
    progress: Progress | None,
    partial: Callable[[Analysis], None] | None = None,
    partial_every: float = 1.0,
    stop: threading.Event | None = None,
    capture_end: float | None = None,
) -> Analysis:
    """``analyze``, the files named ``names`` opened by ``open_sources`` (with their RTP
    collectors, when ``media``)."""
    tracker = Tracker()
    gate = _CallIdLimit(tracker, max_call_ids or None)
    with ExitStack() as stack:
        stack.enter_context(gc_paused())
        # With media, each file read here hands its RTP to a collector (a worker has its own).
        collectors = {name: StreamCollector() for name in names} if media else {}
        readers = open_sources(stack, collectors)
        points = CapturePoints(readers)
        skews = _skews(points, _given_skews(points, skew))
        dedupe: Deduplicator[Parsed] = Deduplicator(points=points.pairs)
        # One capture point: copies can only be the same bytes again, so the payload is key.
        keyed = len(points.names) > 1
        # A worker opens its file again: standard input and other pipes are read here.
        total = sum(r.size for r in readers)
        workers = _worker_count(jobs, sum(r.reopenable for r in readers))
        sources: list[tuple[str, _Pairs[Parsed]]] = []
        worker_sources: dict[str, WorkerSource] = {}
        for reader in readers:
            if workers and isinstance(reader, CaptureReader) and reader.reopenable:
                workers -= 1
                source = worker_sources[reader.name] = WorkerSource(reader, media=media)
                stack.callback(source.close)
                sources.append((reader.name, source))
            else:
                sources.append((reader.name, read_parsed(reader, collectors.get(reader.name))))
        run = _Run(names, readers, points, skews, dedupe, tracker, gate, correlation)
        due = _Due(partial_every) if partial is not None else None
        live = any(r.live for r in readers)
        pairs: Iterable[tuple[SipPayload, Parsed] | None] = (
            _arrivals(sources, points, skews, stack) if live else _merged(sources, points, skews)
        )
        changed = False
        count = 0
        for pair in pairs:
            if stop is not None and stop.is_set():
                break
            if pair is None:  # a live input was quiet for a while: show what came
                if changed and partial is not None and due is not None and due.now():
                    _feed(tracker, dedupe.flush(), gate)
                    with due.timing():
                        now = tracker.finish()
                        partial(run.analysis(now, run.calls(now), media=media, partial=True))
                    changed = False
                continue
            packet, item = pair
            count += 1
            changed = True
            _feed(tracker, dedupe.push(packet, item, dedupe_key(packet, item, keyed)), gate)
            if live or not count % _PROGRESS_EVERY:
                if progress is not None and not count % _PROGRESS_EVERY:
                    progress(sum(r.position for r in readers), total)
                if partial is not None and due is not None and due.now():
                    with due.timing():
                        now = tracker.finish()
                        partial(run.analysis(now, run.calls(now), media=media, partial=True))
                    changed = False
        _feed(tracker, dedupe.flush(), gate)
        if progress is not None:
            progress(total, total)
        model = tracker.finish(capture_end, release=True)
        calls = run.calls(model)
    streams = [
        stream
        for name in names
        for stream in (
            worker_sources[name].streams if name in worker_sources
            else collectors[name].streams() if name in collectors else ()
        )
    ]  # fmt: skip
    streams.sort(key=lambda s: s.first_time)  # stable: file order for a tie
    return run.analysis(model, calls, media=media, streams=tuple(streams))


class _Due:
    """When the next partial analysis is due: ``every`` seconds after the last one ended, or
    four times as long as it took, whichever is later."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.next = time.monotonic() + every

    def now(self) -> bool:
        return time.monotonic() >= self.next

    @contextmanager
    def timing(self) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            end = time.monotonic()
            self.next = end + max(self.every, 4 * (end - start))


@dataclass(slots=True)
class _Run:
    """The state of one ``analyze``, from which its result (or a partial one) is made."""

    names: tuple[str, ...]
    readers: list[CaptureSource]
    points: CapturePoints
    skews: dict[str, float]
    dedupe: Deduplicator[Parsed]
    tracker: Tracker
    gate: _CallIdLimit
    correlation: CorrelationOptions | None

    def calls(self, model: ModelResult) -> tuple[Call, ...]:
        """The calls of ``model`` (the tracker's, finished)."""
        return _calls(sorted(model.legs, key=lambda leg: leg.messages[0].index), self.correlation)

    def analysis(
        self,
        model: ModelResult,
        calls: tuple[Call, ...],
        *,
        media: bool,
        streams: tuple[RtpStream, ...] = (),
        partial: bool = False,
    ) -> Analysis:
        """The analysis of ``model`` and its ``calls``; ``partial``: more is to come."""
        return _analysis(
            self.names, self.readers, self.points, self.skews, self.dedupe, self.gate,
            model, calls, media, streams, partial,
        )  # fmt: skip


def _analysis(
    names: tuple[str, ...],
    readers: list[CaptureSource],
    points: CapturePoints,
    skews: dict[str, float],
    dedupe: Deduplicator[Parsed],
    gate: _CallIdLimit,
    model: ModelResult,
    calls: tuple[Call, ...],
    media: bool,
    streams: tuple[RtpStream, ...],
    partial: bool,
) -> Analysis:
    limited = gate.warning()
    warnings = tuple(w for r in readers for w in r.warnings) + ((limited,) if limited is not None else ())
    summary = summarize(
        names, readers, points, skews, dedupe, model, calls=calls, partial=partial, untracked=gate.untracked
    )
    return Analysis(
        files=names,
        summary=summary,
        calls=calls,
        messages=model.messages,
        malformed=model.malformed,
        transactions=model.transactions,
        dialogs=model.dialogs,
        warnings=warnings,
        media=tuple(streams),
        media_measured=media,
    )


def summarize(
    names: tuple[str, ...],
    readers: Sequence[CaptureSource],
    points: CapturePoints,
    skews: dict[str, float],
    dedupe: Deduplicator[Any],
    model: ModelResult,
    *,
    calls: Sequence[Call],
    partial: bool = False,
    untracked: int = 0,
    tally: Tally | None = None,
) -> Summary:
    """The ``Summary`` of a run: its readers' counts and ``model``'s (of every Call-ID, or of
    one shard's: ``sipflow.shard`` sums those), with ``calls`` counted; ``tally`` in place of
    the model's."""
    stats = CaptureStats.total(r.stats for r in readers)
    tally = model.tally if tally is None else tally
    return Summary(
        files=names,
        packets=stats.frames,
        sip_messages=tally.messages,
        malformed=len(model.malformed),
        non_sip_packets=stats.non_sip_packets,
        non_sip=stats.non_sip,
        unsupported=stats.unsupported,
        retransmissions=tally.retransmissions,
        calls=sum(1 for c in calls if c.kind is CallKind.CALL),
        items=len(calls),
        partial=partial or stats.truncated or untracked > 0,
        incomplete_files=tuple(r.name for r in readers if r.stats.truncated),
        untracked=untracked,
        first_time=tally.first_time,
        last_time=tally.last_time,
        duplicates=dedupe.duplicates,
        doubled=dedupe.doubled,
        skew=skews,
        capture_points=points.list(skews, ((r.name, i) for r in readers for i in r.seen_interfaces)),
    )
