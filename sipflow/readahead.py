"""Reading and parsing a capture, in this process or in a worker process beside it.

``analyze`` takes (packet, parsed SIP) pairs from a *source* per file. The in-process source
reads a batch of packets, then parses the batch. The worker source runs the same code in a
child process and hands the pairs over a pipe, so that one file's reading, decoding and SIP
parsing (about 40 % of the work on a SIP-dense capture) runs on a second core while this
process builds the model: identical results (the same functions on the same bytes; each
process has its own parser caches), sent as the flat tuples of ``SipPayload.__reduce__`` and
``SipRequest.__reduce__``. The pipe's buffer bounds how far the worker runs ahead.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import multiprocessing
import pickle
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Final

from sipflow.capture.reader import CaptureReader
from sipflow.capture.types import CaptureSource, CaptureStats, CaptureWarning, SipPayload, restore_sip_payload
from sipflow.errors import CaptureError, ParseError
from sipflow.media.collector import RtpStream, StreamCollector
from sipflow.sip.message import SipRequest, SipResponse, restore_message
from sipflow.sip.parse import parse_message, parse_truncated


@dataclass(frozen=True, slots=True)
class ParseFailure:
    """Why a packet's payload is no SIP message (``ParseError``'s reason and offset)."""

    reason: str
    offset: int | None = None
    """Byte offset in the payload where parsing gave up, where known."""


Parsed = SipRequest | SipResponse | ParseFailure
"""A parsed message, or why it could not be parsed."""

BATCH: Final = 512
"""Packets read before they are parsed together (each stage keeps its working set in the CPU
caches: measured 13 % faster than packet by packet) and, from a worker, sent together."""


def parse_packet(packet: SipPayload) -> SipRequest | SipResponse:
    """Parse a packet's SIP (``parse_truncated`` where the capture cut it short)."""
    return parse_truncated(packet.payload) if packet.truncated else parse_message(packet.payload)


def parse_or_failure(packet: SipPayload) -> Parsed:
    """``parse_packet``, with a ``ParseFailure`` for a payload that holds no message."""
    try:
        return parse_packet(packet)
    except ParseError as exc:
        return ParseFailure(exc.reason, exc.offset)


def read_parsed(
    reader: CaptureSource, media: StreamCollector | None = None
) -> Iterator[tuple[SipPayload, Parsed]]:
    """The reader's packets with their parsed SIP, a batch at a time, in this process.

    With ``media`` (the reader's sink), each message is parsed as soon as it is read and its
    session description handed to ``media`` before the frames after it are decoded: the RTP
    streams it describes then get its payload type bindings from their first packet."""
    packets = iter(reader)
    if media is not None:
        for packet in packets:
            yield packet, parse_and_describe(packet, media)
        return
    if reader.live:  # a live capture: each packet as it comes, not once 512 have
        for packet in packets:
            yield packet, parse_or_failure(packet)
        return
    while batch := list(itertools.islice(packets, BATCH)):
        yield from zip(batch, list(map(parse_or_failure, batch)), strict=True)


def parse_and_describe(packet: SipPayload, media: StreamCollector) -> Parsed:
    """``parse_or_failure``, and the message's session description told to ``media``
    (``StreamCollector.offer``: read in full only if a stream to it starts)."""
    parsed = parse_or_failure(packet)
    if not isinstance(parsed, ParseFailure) and parsed.body:
        media.offer(parsed)
    return parsed


def _context() -> multiprocessing.context.BaseContext:
    # fork is cheapest (no re-import), but forking a process that runs other threads (an
    # application embedding sipflow) can deadlock the child: spawn there.
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _worker(conn: Connection, path: str, name: str, media: bool) -> None:
    """The child's side: read and parse the file, send batches, then the reader's state (and
    with ``media``, the RTP streams measured)."""
    gc.disable()  # long-lived acyclic objects, as in ``pipeline``; the process ends soon
    try:
        collector = StreamCollector() if media else None
        with CaptureReader(path, name=name, sink=collector) as reader:
            pairs_read = read_parsed(reader, collector)
            while batch := list(itertools.islice(pairs_read, BATCH)):
                # Flat tuples of the values (``__reduce__``): a third cheaper to pickle than the
                # objects, which the parent builds again with the same functions pickle would call.
                pairs = [
                    (packet.__reduce__()[1], item if isinstance(item, ParseFailure) else item.__reduce__()[1])
                    for packet, item in batch
                ]
                conn.send_bytes(pickle.dumps(("pairs", pairs, reader.position), pickle.HIGHEST_PROTOCOL))
            streams = tuple(collector.streams()) if collector is not None else ()
            state = (reader.stats, reader.warnings, reader.seen_interfaces, reader.position, streams)
            conn.send_bytes(pickle.dumps(("end", state), pickle.HIGHEST_PROTOCOL))
    except BaseException as exc:  # anything: the parent must hear of it
        with contextlib.suppress(OSError):  # unless it is gone
            conn.send_bytes(pickle.dumps(("error", f"{type(exc).__name__}: {exc}")))
    finally:
        conn.close()


class WorkerSource:
    """The (packet, parsed SIP) pairs of ``reader``'s file, read and parsed by a child process.

    ``reader`` is this process's reader of the file, opened (so its header was checked and
    ``interfaces`` are known) but not iterated: when the child is done, its ``stats``,
    ``warnings``, ``seen_interfaces`` and ``position`` are the child's, as if it had been read
    here. ``position`` follows the child batch by batch (for progress). Closing the source
    before the end stops the child.
    """

    def __init__(self, reader: CaptureReader, *, media: bool = False) -> None:
        self.reader = reader
        self.streams: tuple[RtpStream, ...] = ()
        """With ``media``, the file's RTP streams, once the child is done."""
        context = _context()
        receive, send = context.Pipe(duplex=False)
        self._conn = receive
        self._process = context.Process(  # type: ignore[attr-defined]
            target=_worker, args=(send, reader.path, reader.name, media),
            name=f"sipflow reader {reader.name}", daemon=True,
        )  # fmt: skip
        self._process.start()
        send.close()  # the child holds the sending end now

    def __iter__(self) -> Iterator[tuple[SipPayload, Parsed]]:
        reader = self.reader
        try:
            while True:
                try:
                    message = pickle.loads(self._conn.recv_bytes())
                except EOFError:
                    self._process.join()
                    raise CaptureError(
                        f"the worker process reading the file ended unexpectedly (exit code "
                        f"{self._process.exitcode})",
                        file=reader.name,
                    ) from None
                kind = message[0]
                if kind == "pairs":
                    reader.position = message[2]
                    for packet, item in message[1]:
                        sip = item if isinstance(item, ParseFailure) else restore_message(*item)
                        yield restore_sip_payload(*packet), sip
                elif kind == "end":
                    self._adopt(*message[1])
                    return
                else:
                    raise CaptureError(f"reading in a worker process failed: {message[1]}", file=reader.name)
        finally:
            self.close()

    def _adopt(
        self,
        stats: CaptureStats,
        warnings: list[CaptureWarning],
        seen: set[int],
        position: int,
        streams: tuple[RtpStream, ...],
    ) -> None:
        self.streams = streams
        reader = self.reader
        reader.stats = stats
        reader.warnings[:] = warnings
        reader.seen_interfaces = seen
        reader.position = position

    def close(self) -> None:
        self._conn.close()
        process = self._process
        if process.is_alive():
            process.terminate()  # our own child, by its handle
        process.join()
