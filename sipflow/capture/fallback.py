"""scapy for the link types the fast path does not know (802.11, radiotap, PPI, …).

The hot path in ``decode`` reads the common link layers itself. For any other link type
that scapy can dissect, scapy finds the IP packet inside the frame and the fast path takes
over from there. It is slow (~0.1 ms a frame) but only ever runs for such link types, and
scapy is imported on first use only.
"""

from __future__ import annotations

from typing import Any

_NOT_LOADED: Any = object()
_scapy: Any = _NOT_LOADED


def _load() -> Any:
    global _scapy  # noqa: PLW0603 - a lazily imported module, loaded once
    if _scapy is _NOT_LOADED:
        try:
            # Imported here, on first use: scapy takes a second to import.
            import scapy.layers.all  # noqa: F401, PLC0415  (registers every link-layer dissector)
            from scapy.config import conf  # noqa: PLC0415
            from scapy.layers.inet import IP  # noqa: PLC0415
            from scapy.layers.inet6 import IPv6  # noqa: PLC0415
        except ImportError:  # pragma: no cover - scapy is a dependency
            _scapy = None
        else:
            _scapy = (conf, IP, IPv6)
    return _scapy


def can_dissect(linktype: int) -> bool:
    """Whether scapy has a dissector for this link type."""
    loaded = _load()
    return loaded is not None and linktype in loaded[0].l2types


def ip_packet(linktype: int, frame: bytes) -> bytes | None:
    """The IPv4 or IPv6 packet inside ``frame`` as scapy dissects it, or None."""
    loaded = _load()
    if loaded is None:
        return None
    conf, ip, ipv6 = loaded
    cls = conf.l2types.get(linktype)
    if cls is None:
        return None
    try:
        packet = cls(frame)
        for layer in (ip, ipv6):
            if layer in packet:
                return bytes(packet[layer])
    except Exception:
        return None
    return None
