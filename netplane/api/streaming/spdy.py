"""The part of SPDY/3.1 framing that kubectl's port-forward speaks (spdystream, no flow control).

kubectl ≥ 1.31 tunnels SPDY through a WebSocket (subprotocol ``SPDY/3.1+portforward.k8s.io``, each
binary message a run of SPDY bytes); the bytes are what it would send over an upgraded HTTP/1.1
connection. Header blocks are zlib streams primed with the dictionary of the SPDY/3 draft
(draft-mbelshe-httpbis-spdy-00, section 2.6.10.1), one compression context per direction.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_PROTOCOL_ERROR, RST_CANCEL = 1, 5
MAX_DATA = 32 * 1024

_WORDS = (
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
    "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
    "content-base", "content-encoding", "content-language", "content-length", "content-location", "content-md5",
    "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host", "if-match",
    "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
    "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer", "retry-after",
    "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
    "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url", "public",
    "set-cookie", "keep-alive", "origin",
)
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# The draft lists the dictionary as bytes: each word with a 4-byte big-endian length, then the tail.
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()
DICTIONARY_ADLER32 = 0xE3C6A7C2  # the draft's dictionary id; guards the table above against typos


class ProtocolError(Exception):
    pass


@dataclass
class Frame:
    control: bool
    type: int  # control frame type; 0 for data
    flags: int
    stream_id: int
    payload: bytes


class Codec:
    """Frame parser and builder for one connection (it owns both header compression contexts)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8,
                                         zlib.Z_DEFAULT_STRATEGY, DICTIONARY)

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= 8:
            word, flags_len = struct.unpack_from(">II", self._buffer)
            length = flags_len & 0xFFFFFF
            if len(self._buffer) < 8 + length:
                break
            payload = bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            flags = flags_len >> 24
            if word & 0x80000000:
                version, ftype = (word >> 16) & 0x7FFF, word & 0xFFFF
                if version != VERSION:
                    raise ProtocolError(f"unsupported SPDY version {version}")
                sid = struct.unpack_from(">I", payload)[0] & 0x7FFFFFFF if len(payload) >= 4 else 0
                frames.append(Frame(True, ftype, flags, sid, payload))
            else:
                frames.append(Frame(False, 0, flags, word & 0x7FFFFFFF, payload))
        return frames

    def headers(self, frame: Frame) -> dict[str, list[str]]:
        """The decoded header block of a SYN_STREAM, SYN_REPLY or HEADERS frame."""
        offset = 10 if frame.type == SYN_STREAM else 4
        try:
            block = self._inflate.decompress(frame.payload[offset:])
        except zlib.error as e:
            raise ProtocolError(f"header block: {e}") from None
        out: dict[str, list[str]] = {}
        try:
            (count,), pos = struct.unpack_from(">I", block), 4
            for _ in range(count):
                (n,) = struct.unpack_from(">I", block, pos)
                name = block[pos + 4:pos + 4 + n].decode().lower()
                pos += 4 + n
                (n,) = struct.unpack_from(">I", block, pos)
                values = block[pos + 4:pos + 4 + n].decode().split("\0")
                pos += 4 + n
                out.setdefault(name, []).extend(values)
        except (struct.error, UnicodeDecodeError) as e:
            raise ProtocolError(f"header block: {e}") from None
        return out

    def _header_block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers)) + b"".join(
            struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
            for k, v in headers.items())
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    @staticmethod
    def control(ftype: int, payload: bytes, flags: int = 0) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(payload)) + payload

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, fin: bool = False) -> bytes:
        payload = struct.pack(">I", stream_id) + self._header_block(headers or {})
        return self.control(SYN_REPLY, payload, FLAG_FIN if fin else 0)

    def rst_stream(self, stream_id: int, status: int) -> bytes:
        return self.control(RST_STREAM, struct.pack(">II", stream_id, status))

    def ping(self, ping_id: int) -> bytes:
        return self.control(PING, struct.pack(">I", ping_id))

    def goaway(self, last_stream: int) -> bytes:
        return self.control(GOAWAY, struct.pack(">II", last_stream, 0))

    @staticmethod
    def data(stream_id: int, payload: bytes, fin: bool = False) -> bytes:
        return struct.pack(">II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(payload)) + payload
