"""Content-Encoding decoding (gzip, deflate) under a size cap, for the fetch stage.

`fetch` streams the raw body through `_Inflater`, which never produces more bytes than it is
asked for, so a gzip bomb is refused once the cap is reached instead of being inflated in
memory. Its own module because it is plain zlib work with no HTTP in it; `ENCODINGS`, what the
fetcher advertises in Accept-Encoding, stays next to the decoder that defines it.
"""

from __future__ import annotations

import zlib

from monitor.errors import FetchError

# Only what _Inflater decodes: httpx would otherwise advertise br/zstd when those packages
# happen to be installed, and we would receive bodies we cannot inflate under the cap.
ENCODINGS = "gzip, deflate"


class _Inflater:
    """Decodes one Content-Encoding incrementally, never producing more than asked for."""

    def __init__(self, feed_id: str, encoding: str) -> None:
        self._encoding = encoding.strip().lower()
        self._first = True
        if self._encoding in ("", "identity"):
            self._zlib = None
        elif self._encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self._encoding == "deflate":
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS)
        else:
            raise FetchError(
                f"the server sent the body encoded as {encoding!r}, which monitor cannot decode",
                feed_id=feed_id,
                hint=f"the server ignored Accept-Encoding: {ENCODINGS}",
            )

    def feed(self, data: bytes, limit: int) -> bytes:
        """Inflate `data`, returning at most `limit` bytes (a full return means: over the cap)."""
        if self._zlib is None:
            return data[:limit]
        if self._first and self._encoding == "deflate":
            self._first = False
            try:
                return self._zlib.decompress(data, limit)
            except zlib.error:
                # "deflate" is meant to be zlib-wrapped, but some servers send a raw stream.
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._zlib.decompress(data, limit)

    def finish(self) -> bytes:
        if self._zlib is None:
            return b""
        if not self._zlib.eof:
            raise zlib.error(f"the {self._encoding} body ends before the compressed stream does")
        # Bytes after the end of the stream (padding, a second gzip member) are ignored, as
        # browsers do: a feed body is one document.
        return self._zlib.flush()
