"""CRI log reading and SPDY framing, the pieces of the streaming path that need no kubectl."""

from __future__ import annotations

import datetime as dt
import zlib

from netplane.api.streaming import spdy
from netplane.dataplane.streams import crilog


def test_spdy_dictionary_is_the_drafts() -> None:
    # The dictionary id kubectl's zlib stream carries; a typo in the table breaks every header block.
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == spdy.DICTIONARY_ADLER32


def test_spdy_syn_reply_round_trips_through_a_peer_codec() -> None:
    server, client = spdy.Codec(), spdy.Codec()
    wire = server.syn_reply(3, {"streamtype": "data"}) + server.data(3, b"abc", fin=True) + server.ping(7)
    frames = client.feed(wire[:5]) + client.feed(wire[5:])
    assert [(f.control, f.type, f.stream_id) for f in frames] == [(True, spdy.SYN_REPLY, 3), (False, 0, 3),
                                                                  (True, spdy.PING, 7)]
    assert client.headers(frames[0]) == {"streamtype": ["data"]}
    assert frames[1].payload == b"abc" and frames[1].flags & spdy.FLAG_FIN


def test_cri_partial_lines_join_and_tail_counts_whole_lines() -> None:
    lines = [b"2026-01-01T00:00:00.123456789Z stdout P a", b"2026-01-01T00:00:01Z stdout F b",
             b"garbage", b"2026-01-01T00:00:02Z stderr F c"]
    found = list(crilog.entries(lines))
    assert [(e.timestamp, e.stream, e.text) for e in found] == [
        ("2026-01-01T00:00:00.123456789Z", "stdout", b"ab\n"), ("2026-01-01T00:00:02Z", "stderr", b"c\n")]
    assert crilog.select(found, "All", None, 1) == found[1:]
    assert crilog.select(found, "Stdout", None, None) == found[:1]
    since = dt.datetime(2026, 1, 1, 0, 0, 1, tzinfo=dt.UTC)
    assert crilog.select(found, "All", since, None) == found[1:]
