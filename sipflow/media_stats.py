"""Media totals of an analysis (``sipflow stats --media``): its RTP streams counted and their
figures spread out.

Every figure is per stream (SSRC and direction, as ``sipflow media`` lists them): its loss of
the expected packets (RFC 3550 A.3; negative when packets came twice), its maximum and mean
interarrival jitter (RFC 3550 §6.4.1), its estimated MOS (``sipflow.media.quality``, a
simplified G.107 E-model; a stream whose voice codec the model does not rate has none). The
answered calls are counted by the direction of their RTP (``media_direction``: by hosts, so
NAT and SBC ports do not matter).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from sipflow.media.quality import primary_codec, quality
from sipflow.model.analysis import Analysis
from sipflow.model.call import CallKind
from sipflow.model.caller import caller_view
from sipflow.model.media import media_direction, streams_by_call
from sipflow.stats import Distribution, summarize

SATISFACTION: Final = (
    (90.0, "very_satisfied"),
    (80.0, "satisfied"),
    (70.0, "some_dissatisfied"),
    (60.0, "many_dissatisfied"),
    (50.0, "nearly_all_dissatisfied"),
    (0.0, "not_recommended"),
)
"""ITU-T G.107 Annex B, Table B.1: user satisfaction by the lowest rating R of each band
(MOS 4.34, 4.03, 3.60, 3.10, 2.58 and below)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Spread:
    """Values without a unit of time (loss in per cent, MOS): nearest-rank percentiles, as
    ``Distribution``'s; every field but ``count`` is None when it is 0."""

    count: int
    min: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None
    mean: float | None = None

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        summary = summarize(values)
        if summary is None:
            return cls(count=0)
        count, low, p50, p90, p99, high, mean = summary
        return cls(count=count, min=low, p50=p50, p90=p90, p99=p99, max=high, mean=mean)


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaStats:
    """What ``sipflow stats --media`` adds."""

    streams: int
    """RTP streams measured (SSRC and direction)."""
    linked: int
    """Streams an SDP of the capture linked to a call; the others are unlinked."""
    packets: int
    expected: int
    """Packets the streams' sequence numbers span (RFC 3550 A.3), summed."""
    lost: int
    """Expected less received, summed over the streams (a stream with duplicates counts negative,
    as tshark shows it)."""
    lost_pct: float | None
    """``lost`` of ``expected`` in per cent (3 decimals); None without expected packets."""
    streams_with_loss: int
    """Streams that lost at least one packet."""
    loss_pct: Spread = field(default_factory=lambda: Spread(count=0))
    """Per stream: its loss in per cent."""
    max_jitter: Distribution = field(default_factory=lambda: Distribution(count=0))
    """Per stream: its highest interarrival jitter, ms."""
    mean_jitter: Distribution = field(default_factory=lambda: Distribution(count=0))
    """Per stream: its mean interarrival jitter, ms."""
    mos: Spread = field(default_factory=lambda: Spread(count=0))
    """Per rated stream: its estimated MOS."""
    satisfaction: Mapping[str, int] = field(default_factory=dict)
    """Rated streams by G.107 user-satisfaction band of their R (keys of ``SATISFACTION``, in
    that order, every band present)."""
    unrated: int = 0
    """Streams without an estimate (codec not rated, or a single packet)."""
    codecs: Mapping[str, int] = field(default_factory=dict)
    """Streams by the codec of their voice (RFC 4733 events and comfort noise are not one),
    most streams first; ``?`` for a stream whose payload type has no name."""
    calls: Mapping[str, int] = field(default_factory=dict)
    """Answered calls by their RTP: ``two-way``, ``one-way``, ``none`` (every key present)."""


def media_stats(analysis: Analysis) -> MediaStats:
    """The media totals of ``analysis`` (measured with ``analyze(media=True)``; without, the
    totals are those of no stream)."""
    streams = analysis.media
    by_call = streams_by_call(analysis.calls, streams)
    expected = sum(s.figures.expected for s in streams)
    lost = sum(s.figures.lost for s in streams)
    codecs: Counter[str] = Counter()
    scores: list[float] = []
    bands = dict.fromkeys((name for _, name in SATISFACTION), 0)
    for s in streams:
        primary = primary_codec(s.figures.payload_types, s.codecs)
        codecs[primary[1] if primary is not None and primary[1] else "?"] += 1
        estimate = quality(s.figures, s.codecs)
        if estimate is None:
            continue
        scores.append(estimate.mos)
        bands[next(name for low, name in SATISFACTION if estimate.r_factor >= low)] += 1
    directions = dict.fromkeys(("two-way", "one-way", "none"), 0)
    for call in analysis.calls:
        if call.kind is CallKind.CALL and caller_view(call.legs[0]).answer_time is not None:
            directions[media_direction(by_call.get(call.index, []))] += 1
    return MediaStats(
        streams=len(streams),
        linked=len(streams) - len(by_call.get(-1, [])),
        packets=sum(s.figures.packets for s in streams),
        expected=expected,
        lost=lost,
        lost_pct=round(100.0 * lost / expected, 3) if expected else None,
        streams_with_loss=sum(1 for s in streams if s.figures.lost > 0),
        loss_pct=Spread.of(s.figures.lost_pct for s in streams if s.figures.lost_pct is not None),
        max_jitter=Distribution.of(
            s.figures.max_jitter_ms for s in streams if s.figures.max_jitter_ms is not None
        ),
        mean_jitter=Distribution.of(
            s.figures.mean_jitter_ms for s in streams if s.figures.mean_jitter_ms is not None
        ),
        mos=Spread.of(scores),
        satisfaction=bands,
        unrated=len(streams) - len(scores),
        codecs=dict(sorted(codecs.items(), key=lambda kv: (-kv[1], kv[0]))),
        calls=directions,
    )
