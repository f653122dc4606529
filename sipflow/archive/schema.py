"""The archive's tables (DuckDB), schema version 2: documented in README.md ("Archives").

``packets`` is the archive's source of truth: every SIP-bearing payload of every file indexed,
its bytes compressed; beside it, ``media_streams``, the RTP streams measured in each file
(``archive.media``). Everything else is derived from the packets by the analysis and can be
derived again: ``messages`` (the packets that are messages, once further captures of the same
message are folded in), ``transactions``, ``dialogs``, ``legs``, ``calls``, ``correlation``,
``findings`` and ``sdp_addresses`` (what links a stream to its call: the view
``stream_calls``). Times are integer nanoseconds since the Unix epoch (``*_ns``) beside the float
seconds the analysis uses (``timestamp``), so that what is read back is bit for bit what was
analysed.
"""

from __future__ import annotations

from typing import Final

SCHEMA_VERSION: Final = 2


def owner_sql(streams: str) -> str:
    """The query of each stream's call: ``file_id, seq, call_key`` for every stream of
    ``streams`` (a table or a parenthesized query with ``media_streams``' columns) that an SDP
    of the archive describes; ``model.media.calls_of_streams``'s rule, with the calls' order
    (``call_index``) breaking ties of time."""
    return f"""
        SELECT file_id, seq, call_key FROM (
            SELECT s.file_id, s.seq, a.call_key, c.call_index, a.timestamp,
                   a.timestamp <= s.first_time AS before
            FROM {streams} s
            JOIN sdp_addresses a ON a.address = s.dst_host AND a.port = s.dst_port
            JOIN calls c ON c.call_key = a.call_key
        )
        QUALIFY row_number() OVER (
            PARTITION BY file_id, seq
            ORDER BY before DESC,
                     CASE WHEN before THEN timestamp END DESC, CASE WHEN before THEN call_index END DESC,
                     timestamp, call_index
        ) = 1"""


TABLES: Final = {
    "schema_version": """
        version INTEGER NOT NULL,
        created_by VARCHAR NOT NULL""",
    "files": """
        file_id INTEGER PRIMARY KEY,
        path VARCHAR NOT NULL,
        abspath VARCHAR NOT NULL UNIQUE,
        size BIGINT NOT NULL,
        mtime_ns BIGINT NOT NULL,
        head_hash VARCHAR NOT NULL,
        format VARCHAR,
        interfaces VARCHAR[] NOT NULL,
        seen_interfaces INTEGER[] NOT NULL,
        frames BIGINT NOT NULL,
        sip_packets BIGINT NOT NULL,
        non_sip JSON NOT NULL,
        unsupported JSON NOT NULL,
        truncated BOOLEAN NOT NULL,
        warnings JSON NOT NULL,
        skews JSON NOT NULL,
        first_ns BIGINT,
        last_ns BIGINT,
        indexed_at TIMESTAMP NOT NULL,
        read_seconds DOUBLE NOT NULL,
        reduced BOOLEAN NOT NULL""",
    "pending": """
        call_id VARCHAR NOT NULL""",
    "packets": """
        file_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        frame BIGINT NOT NULL,
        frames BIGINT[] NOT NULL,
        time_ns BIGINT NOT NULL,
        timestamp DOUBLE NOT NULL,
        interface INTEGER NOT NULL,
        src_host VARCHAR NOT NULL,
        src_port INTEGER NOT NULL,
        dst_host VARCHAR NOT NULL,
        dst_port INTEGER NOT NULL,
        transport VARCHAR NOT NULL,
        ip_id INTEGER,
        truncated BOOLEAN NOT NULL,
        call_id VARCHAR,
        cseq BIGINT,
        cseq_method VARCHAR,
        method VARCHAR,
        status INTEGER,
        branch VARCHAR,
        parse_error VARCHAR,
        length INTEGER NOT NULL,
        raw BLOB NOT NULL""",
    "media_streams": """
        file_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        src_host VARCHAR NOT NULL,
        src_port INTEGER NOT NULL,
        dst_host VARCHAR NOT NULL,
        dst_port INTEGER NOT NULL,
        ssrc BIGINT NOT NULL,
        first_frame BIGINT NOT NULL,
        last_frame BIGINT NOT NULL,
        first_ns BIGINT NOT NULL,
        first_time DOUBLE NOT NULL,
        last_ns BIGINT NOT NULL,
        last_time DOUBLE NOT NULL,
        packets BIGINT NOT NULL,
        expected BIGINT NOT NULL,
        lost BIGINT NOT NULL,
        sequence_errors BIGINT NOT NULL,
        min_delta_ms DOUBLE,
        mean_delta_ms DOUBLE,
        max_delta_ms DOUBLE,
        min_jitter_ms DOUBLE,
        mean_jitter_ms DOUBLE,
        max_jitter_ms DOUBLE,
        clock_rate INTEGER,
        payload_types INTEGER[] NOT NULL,
        codecs VARCHAR[] NOT NULL,
        mos DOUBLE,
        r_factor DOUBLE,
        dtmf STRUCT(digit VARCHAR, frame BIGINT, time DOUBLE, duration_ms DOUBLE, source VARCHAR)[] NOT NULL,
        rtcp_reports INTEGER,
        rtcp_last_fraction_lost_pct DOUBLE,
        rtcp_max_fraction_lost_pct DOUBLE,
        rtcp_cumulative_lost BIGINT,
        rtcp_max_jitter_ms DOUBLE,
        rtcp_mean_round_trip_ms DOUBLE,
        rtcp_max_round_trip_ms DOUBLE""",
    "messages": """
        file_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        position BIGINT NOT NULL,
        call_key BIGINT NOT NULL,
        leg INTEGER NOT NULL,
        file VARCHAR NOT NULL,
        frame BIGINT NOT NULL,
        time_ns BIGINT NOT NULL,
        timestamp DOUBLE NOT NULL,
        capture_point VARCHAR NOT NULL,
        src VARCHAR NOT NULL,
        dst VARCHAR NOT NULL,
        transport VARCHAR NOT NULL,
        is_request BOOLEAN NOT NULL,
        method VARCHAR,
        status INTEGER,
        reason VARCHAR,
        call_id VARCHAR NOT NULL,
        cseq BIGINT,
        cseq_method VARCHAR,
        branch VARCHAR,
        from_tag VARCHAR,
        to_tag VARCHAR,
        from_user VARCHAR,
        to_user VARCHAR,
        request_uri VARCHAR,
        retransmission BOOLEAN NOT NULL,
        matched_by VARCHAR NOT NULL,
        copies STRUCT(file VARCHAR, frame BIGINT)[] NOT NULL,
        doubled INTEGER NOT NULL""",
    "transactions": """
        call_key BIGINT NOT NULL,
        leg INTEGER NOT NULL,
        position INTEGER NOT NULL,
        method VARCHAR NOT NULL,
        branch VARCHAR,
        cseq BIGINT,
        client VARCHAR NOT NULL,
        server VARCHAR NOT NULL,
        final_status INTEGER,
        messages INTEGER NOT NULL,
        retransmissions INTEGER NOT NULL,
        first_ns BIGINT NOT NULL""",
    "dialogs": """
        call_key BIGINT NOT NULL,
        leg INTEGER NOT NULL,
        position INTEGER NOT NULL,
        call_id VARCHAR NOT NULL,
        from_tag VARCHAR NOT NULL,
        to_tag VARCHAR NOT NULL,
        state VARCHAR NOT NULL,
        created_by VARCHAR NOT NULL""",
    "legs": """
        call_key BIGINT NOT NULL,
        leg INTEGER NOT NULL,
        call_id VARCHAR NOT NULL,
        state VARCHAR NOT NULL,
        final_status INTEGER,
        from_uri VARCHAR,
        to_uri VARCHAR,
        from_user VARCHAR,
        to_user VARCHAR,
        from_display VARCHAR,
        to_display VARCHAR,
        messages INTEGER NOT NULL,
        first_ns BIGINT NOT NULL,
        last_ns BIGINT NOT NULL""",
    "calls": """
        call_key BIGINT NOT NULL,
        call_index INTEGER NOT NULL,
        id VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        state VARCHAR NOT NULL,
        final_status INTEGER,
        final_reason VARCHAR,
        start_ns BIGINT NOT NULL,
        end_ns BIGINT NOT NULL,
        pdd_ms DOUBLE,
        setup_ms DOUBLE,
        duration_s DOUBLE,
        messages INTEGER NOT NULL,
        retransmissions INTEGER NOT NULL,
        legs INTEGER NOT NULL,
        from_uri VARCHAR,
        to_uri VARCHAR,
        from_user VARCHAR,
        to_user VARCHAR,
        call_ids VARCHAR[] NOT NULL,
        related VARCHAR[] NOT NULL,
        expires_s INTEGER,
        order_start DOUBLE NOT NULL,
        order_file INTEGER NOT NULL,
        order_seq INTEGER NOT NULL""",
    "correlation": """
        call_key BIGINT NOT NULL,
        leg_a INTEGER NOT NULL,
        leg_b INTEGER NOT NULL,
        method VARCHAR NOT NULL,
        confidence DOUBLE NOT NULL,
        evidence VARCHAR[] NOT NULL""",
    "findings": """
        call_key BIGINT,
        rule VARCHAR NOT NULL,
        severity VARCHAR NOT NULL,
        message VARCHAR NOT NULL,
        call_id VARCHAR,
        frames STRUCT(file VARCHAR, frame BIGINT)[] NOT NULL,
        cause VARCHAR""",
    "sdp_addresses": """
        call_key BIGINT NOT NULL,
        address VARCHAR NOT NULL,
        port INTEGER NOT NULL,
        timestamp DOUBLE NOT NULL""",
}
"""Each table's columns, in order."""

DERIVED: Final = (
    "messages",
    "transactions",
    "dialogs",
    "legs",
    "calls",
    "correlation",
    "findings",
    "sdp_addresses",
)
"""The tables of what the analysis made of the packets: replaced, call by call, as files come."""

VIEWS: Final = {
    "malformed": """
        SELECT f.path AS file, p.frame, p.time_ns, p.src_host, p.src_port, p.dst_host, p.dst_port,
               p.transport, p.parse_error AS reason
        FROM packets p JOIN files f USING (file_id) WHERE p.parse_error IS NOT NULL""",
    "stream_calls": owner_sql("media_streams"),
}


def ddl() -> list[str]:
    """The statements that create an empty archive of this version."""
    out = [f"CREATE TABLE IF NOT EXISTS {name} ({columns}\n)" for name, columns in TABLES.items()]
    out += [
        "CREATE INDEX IF NOT EXISTS packets_call_id ON packets (call_id)",
        "CREATE INDEX IF NOT EXISTS messages_call ON messages (call_key)",
        "CREATE INDEX IF NOT EXISTS sdp_addresses_call ON sdp_addresses (call_key)",
    ]
    out += [f"CREATE OR REPLACE VIEW {name} AS {query}" for name, query in VIEWS.items()]
    return out
