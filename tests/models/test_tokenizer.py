"""The byte tokenizer is lossless for any input and streams UTF-8 safely."""

from hypothesis import given
from hypothesis import strategies as st

from plastic.models.tokenizer import BOS, ByteTokenizer


@given(st.binary(max_size=512))
def test_bytes_round_trip(data: bytes) -> None:
    tok = ByteTokenizer()
    ids = tok.encode(data, bos=True)
    assert ids[0] == BOS and all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode_bytes(ids) == data


@given(st.text(max_size=256))
def test_text_round_trip(text: str) -> None:
    tok = ByteTokenizer()
    assert tok.decode(tok.encode(text)) == text


@given(st.text(max_size=128))
def test_stream_decoder_matches_decode(text: str) -> None:
    tok = ByteTokenizer()
    dec = tok.stream_decoder()
    out = "".join(dec.push(i) for i in tok.encode(text)) + dec.flush()
    assert out == text


def test_invalid_utf8_is_replaced_not_raised() -> None:
    tok = ByteTokenizer()
    assert tok.decode([0xFF, 0x41]) == "\ufffdA"
    dec = tok.stream_decoder()
    assert dec.push(0xE2) == ""  # incomplete sequence held back
    assert dec.flush() == "\ufffd"
