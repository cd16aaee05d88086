"""Schedule tokens: round trips, and clear refusals of anything else."""

import base64
import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blkrace.engine.token import (
    MAX_DECODED_BYTES,
    MAX_TOKEN_CHARS,
    PREFIX,
    VERSION,
    Schedule,
    TokenError,
    decode,
    encode,
)

names = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=30)


@given(
    scenario=names,
    variant=names,
    params=names,
    fingerprint=st.binary(min_size=8, max_size=8),
    choices=st.lists(st.integers(min_value=0, max_value=2**40), max_size=400),
)
def test_round_trip(scenario, variant, params, fingerprint, choices):
    sched = Schedule(scenario, variant, params, fingerprint, tuple(choices))
    token = encode(sched)
    assert token.startswith(PREFIX)
    assert token.isascii() and " " not in token
    assert decode(token) == sched


def _token():
    return encode(Schedule("budget-rerun", "buggy", "", b"12345678", tuple(range(50)) * 3))


@pytest.mark.parametrize("cut", [1, 5, 10, 20])
def test_truncated_tokens_are_refused(cut):
    token = _token()
    with pytest.raises(TokenError):
        decode(token[:-cut])


@given(st.integers(min_value=len(PREFIX), max_value=60), st.sampled_from("AbZ09-_"))
def test_a_changed_character_is_refused(pos, ch):
    token = _token()
    if pos >= len(token) or token[pos] == ch:
        return
    changed = token[:pos] + ch + token[pos + 1 :]
    with pytest.raises(TokenError):
        decode(changed)


@pytest.mark.parametrize("bad", ["", "hello", "br1.", "br1.!!!!", "br2.AAAA", "br1.AAAAAAAAAAAA"])
def test_garbage_is_refused(bad):
    with pytest.raises(TokenError):
        decode(bad)


@pytest.mark.parametrize("suffix", ["hello_world_1234", "AAAA", "-", "\n" + "br1.AAAA", " br1.AAAA", "=", "."])
def test_anything_after_a_token_is_refused(suffix):
    token = _token()
    decode(token)
    with pytest.raises(TokenError):
        decode(token + suffix)


def test_two_tokens_joined_are_refused():
    token = _token()
    for joiner in ("\n", "", " ", "\r\n"):
        with pytest.raises(TokenError):
            decode(token + joiner + token)


def test_an_oversize_token_is_refused_before_decoding():
    with pytest.raises(TokenError, match="characters long"):
        decode(PREFIX + "A" * (MAX_TOKEN_CHARS + 1))


def _crafted(body):
    return PREFIX + base64.urlsafe_b64encode(body).decode("ascii").rstrip("=")


def test_a_token_inflating_past_the_bound_is_refused():
    # 30 million one-byte choices compress to about 30 KB: refused once the
    # inflated size passes the bound, without inflating the rest.
    bomb = bytes([VERSION]) + b"\0\0\0" + b"12345678" + b"\x80\x8e\xce\x0e" + b"\x01" * 30_000_000
    token = _crafted(b"z" + zlib.compress(bomb, 9))
    assert len(token) < MAX_TOKEN_CHARS
    with pytest.raises(TokenError, match="inflates to more than"):
        decode(token)
    raw = _crafted(b"r" + b"\x01" * (MAX_DECODED_BYTES + 10))
    with pytest.raises(TokenError):
        decode(raw)


def test_a_choice_count_beyond_the_data_is_refused_at_once():
    body = bytearray([VERSION, 0, 0, 0]) + b"12345678" + b"\xff\xff\xff\xff\x0f"
    body += struct.pack(">I", zlib.crc32(body))
    with pytest.raises(TokenError, match="truncated"):
        decode(_crafted(b"r" + bytes(body)))


@given(st.text(max_size=300))
def test_decoding_any_text_raises_only_token_errors(text):
    for candidate in (text, PREFIX + text):
        try:
            decode(candidate)
        except TokenError:
            pass


@given(st.binary(max_size=300), st.sampled_from(b"zr"))
def test_decoding_any_body_raises_only_token_errors(body, flag):
    for candidate in (bytes([flag]) + body, bytes([flag]) + zlib.compress(body)):
        try:
            decode(_crafted(candidate))
        except TokenError:
            pass
