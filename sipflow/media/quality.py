"""An estimate of a stream's listening quality: a simplified ITU-T G.107 E-model.

The E-model rates a call path with a transmission rating R (0-100) and maps it to a mean
opinion score (G.107 Annex B: MOS 1.0-4.5). With the defaults of G.107 for everything a
capture cannot know (loudness ratings, noise, sidetone, echo: R0 - Is = 93.2), R depends on

* the *codec*: its equipment impairment Ie and packet-loss robustness Bpl (ITU-T G.113
  Appendix I; G.711 with packet loss concealment, as SIP phones have it);
* the *loss*: the stream's lost share Ppl, taken as random loss (BurstR = 1), giving
  Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl) (G.107 §7.4);
* the *delay*: the one-way mouth-to-ear delay Ta, estimated as packetization (the mean
  arrival spacing) plus a jitter buffer of twice the mean jitter; Id as G.107's Idd for Ta
  over 100 ms, without echo (Idte, Idle: 0).

Its limits, which a reader of the figure should know: the network's own delay is not in a
one-point capture (the estimate is that of a short path), loss is seen where the capture was
taken (not at the receiving phone), a jitter buffer's discards are not modelled, bursts count
as random loss, and only the narrowband codecs whose Ie and Bpl G.113 gives are rated (PCMU,
PCMA, G.729, G.723.1); others (G.722, Opus, GSM, iLBC, telephone events) get no score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from sipflow.media.payload_types import COMFORT_NOISE
from sipflow.media.rtp import StreamFigures

__all__ = ["CODEC_IMPAIRMENT", "Quality", "mos_from_r", "primary_codec", "quality", "r_factor"]

CODEC_IMPAIRMENT: Final[dict[str, tuple[float, float]]] = {
    # encoding name (upper case) → (Ie, Bpl), ITU-T G.113 Appendix I (Tables I.1, I.3)
    "PCMU": (0.0, 25.1),
    "PCMA": (0.0, 25.1),
    "G729": (11.0, 19.0),
    "G729A": (11.0, 19.0),
    "G723": (15.0, 16.1),
}
"""Equipment impairment and packet-loss robustness of the codecs the model rates."""

_R0_MINUS_IS: Final = 93.2
"""G.107's default basic signal-to-noise ratio less the simultaneous impairments."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Quality:
    """The E-model's estimate for one stream."""

    r_factor: float
    mos: float
    codec: str
    """The codec the estimate was made for."""
    delay_ms: float
    """The one-way delay the estimate assumed (packetization and jitter buffer)."""


def mos_from_r(r: float) -> float:
    """G.107 Annex B: the MOS (conversational quality, estimated) of a rating R."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    # The cubic dips just under 1 for R below 6.5: a score is never under the scale's floor.
    return max(1.0, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6)


def _delay_impairment(ta_ms: float) -> float:
    """G.107 §7.3 Idd: the impairment of a one-way delay ``ta_ms`` (none to 100 ms)."""
    if ta_ms <= 100:
        return 0.0
    x = math.log10(ta_ms / 100) / math.log10(2)
    return 25.0 * (math.pow(1 + x**6, 1 / 6) - 3 * math.pow(1 + (x / 3) ** 6, 1 / 6) + 2)


def r_factor(codec: str, loss_pct: float, delay_ms: float) -> float | None:
    """The rating of ``codec`` at ``loss_pct`` per cent random loss and a one-way delay of
    ``delay_ms``; None when the codec is not one the model rates."""
    known = CODEC_IMPAIRMENT.get(codec.upper())
    if known is None:
        return None
    ie, bpl = known
    ppl = min(max(loss_pct, 0.0), 100.0)
    ie_eff = ie + (95 - ie) * ppl / (ppl + bpl)
    return max(0.0, min(100.0, _R0_MINUS_IS - _delay_impairment(delay_ms) - ie_eff))


def primary_codec(payload_types: tuple[int, ...], codecs: tuple[str, ...]) -> tuple[int, str] | None:
    """The payload type (and its codec's name) a stream carries its voice in: the first one that
    is neither comfort noise (RFC 3389) nor a telephone event (RFC 4733); else the first."""
    pairs = list(zip(payload_types, codecs, strict=False))
    if not pairs:
        return None
    for pt, name in pairs:
        if pt not in COMFORT_NOISE and name.lower() != "telephone-event":
            return pt, name
    return pairs[0]


def quality(figures: StreamFigures, codecs: tuple[str, ...]) -> Quality | None:
    """The estimate for a stream measured as ``figures`` with these codec names; None when the
    stream's voice codec is not rated or the stream is too short to have spacing."""
    primary = primary_codec(figures.payload_types, codecs)
    if primary is None or figures.mean_delta_ms is None:
        return None
    codec = primary[1]
    delay = figures.mean_delta_ms + 2 * (figures.mean_jitter_ms or 0.0)
    r = r_factor(codec, figures.lost_pct or 0.0, delay)
    if r is None:
        return None
    return Quality(r_factor=round(r, 1), mos=round(mos_from_r(r), 2), codec=codec, delay_ms=delay)
