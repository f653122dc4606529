"""The session's media, sans-I/O: RTP and RTCP packets in, per-stream measurements out.

``rtp`` reads RTP headers (RFC 3550 §5.1) and measures one stream as ``tshark -z rtp,streams``
does (sequence, loss, delta, interarrival jitter); ``payload_types`` holds the static payload
types of RFC 3551; ``rtcp`` reads sender and receiver reports (RFC 3550 §6.4) and what they say
of each stream; ``collector`` is the capture layer's payload sink that sorts RTP packets into
streams. Linking streams to calls through the SDP offer/answer comes on top of these.
"""
