"""Byte-level tokenizer: every byte value is a token, plus a few specials; lossless."""

from __future__ import annotations

import codecs
from collections.abc import Iterable

BYTE_VOCAB = 256
BOS, EOS, PAD, SEP = 256, 257, 258, 259
SPECIALS = {"<bos>": BOS, "<eos>": EOS, "<pad>": PAD, "<sep>": SEP}


class ByteTokenizer:
    """Tokens 0..255 are raw bytes; 256.. are specials (<bos>, <eos>, <pad>, <sep>).

    Text is encoded as UTF-8, so any string or byte string round-trips exactly.
    """

    name = "byte"
    vocab_size = BYTE_VOCAB + len(SPECIALS)
    bos_id, eos_id, pad_id, sep_id = BOS, EOS, PAD, SEP

    def encode(self, text: str | bytes, *, bos: bool = False) -> list[int]:
        """Return the token ids of `text` (str is UTF-8 encoded), optionally with <bos> first."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        ids = list(data)
        return [BOS, *ids] if bos else ids

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Return the raw bytes of `ids`, dropping special tokens."""
        return bytes(i for i in ids if 0 <= i < BYTE_VOCAB)

    def decode(self, ids: Iterable[int]) -> str:
        """Return text; invalid UTF-8 sequences become U+FFFD instead of raising."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def stream_decoder(self) -> StreamDecoder:
        """Return an incremental decoder for printing tokens as they are generated."""
        return StreamDecoder()


class StreamDecoder:
    """Turns a stream of token ids into text, holding back incomplete UTF-8 sequences."""

    def __init__(self) -> None:
        self._dec = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id: int) -> str:
        """Feed one token; return whatever text it completes (possibly '')."""
        if not 0 <= token_id < BYTE_VOCAB:
            return ""
        return self._dec.decode(bytes([token_id]))

    def flush(self) -> str:
        """Return any held-back bytes (as U+FFFD if they never completed)."""
        return self._dec.decode(b"", final=True)
