"""Schedule tokens: a run's identity and every choice, as one printable string.

Layout before encoding (Hypothesis's failure blobs, Shuttle's schedules):

    version byte | varint len + scenario | varint len + variant
    | varint len + params | 8-byte model fingerprint
    | varint count | count varints (the choices) | crc32 of all the above

The body is zlib-compressed when that is shorter (a flag byte says which),
then base64url without padding, behind the prefix ``br1.``.

Decoding is strict: only the base64url alphabet after the prefix, nothing
after the compressed stream, and bounds on the token's length and on the
size it inflates to (a crafted token must not cost seconds and gigabytes
before it is refused).
"""

from __future__ import annotations

import base64
import re
import struct
import zlib
from dataclasses import dataclass

PREFIX = "br1."
VERSION = 1
# A command-line argument is at most 128 KiB on Linux (MAX_ARG_STRLEN); a token
# inflates to at most 1 MiB, a million choices or more (runs are bounded by
# --max-steps, 20,000 steps by default).
MAX_TOKEN_CHARS = 128 * 1024
MAX_DECODED_BYTES = 1 << 20
_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")


class TokenError(ValueError):
    """A token that does not decode (truncated, mistyped, another format)."""


@dataclass(frozen=True)
class Schedule:
    scenario: str
    variant: str
    params: str
    fingerprint: bytes
    choices: tuple


def _varint(n, out):
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _read_varint(data, pos):
    shift = result = 0
    while True:
        if pos >= len(data):
            raise TokenError("the token is truncated")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise TokenError("the token holds an impossible number")


def _read_str(data, pos):
    n, pos = _read_varint(data, pos)
    if pos + n > len(data):
        raise TokenError("the token is truncated")
    try:
        return data[pos : pos + n].decode("utf-8"), pos + n
    except UnicodeDecodeError as exc:
        raise TokenError("the token is corrupt") from exc


def encode(schedule):
    out = bytearray([VERSION])
    for text in (schedule.scenario, schedule.variant, schedule.params):
        raw = text.encode("utf-8")
        _varint(len(raw), out)
        out += raw
    if len(schedule.fingerprint) != 8:
        raise ValueError("a fingerprint is 8 bytes")
    out += schedule.fingerprint
    _varint(len(schedule.choices), out)
    for c in schedule.choices:
        _varint(c, out)
    out += struct.pack(">I", zlib.crc32(out))
    packed = zlib.compress(bytes(out), 9)
    body = b"z" + packed if len(packed) < len(out) else b"r" + bytes(out)
    return PREFIX + base64.urlsafe_b64encode(body).decode("ascii").rstrip("=")


def decode(token):
    token = token.strip()
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenError(f"the token is {len(token):,} characters long; a blkrace token is at most {MAX_TOKEN_CHARS:,}")
    if not token.startswith(PREFIX):
        raise TokenError(f"not a blkrace schedule token (it should start with {PREFIX!r})")
    text = token[len(PREFIX) :]
    if not _ALPHABET.fullmatch(text):
        raise TokenError("the token holds characters outside base64url (two tokens joined, or a cut-and-paste error?)")
    if len(text) % 4 == 1:
        raise TokenError("the token is truncated")
    try:
        body = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise TokenError("the token is not valid base64url; was it cut or mistyped?") from exc
    if not body:
        raise TokenError("the token is empty")
    if body[:1] == b"z":
        data = _inflate(body[1:])
    elif body[:1] == b"r":
        data = body[1:]
    else:
        raise TokenError("the token is corrupt")
    if len(data) > MAX_DECODED_BYTES:
        raise TokenError(f"the token holds more than {MAX_DECODED_BYTES:,} bytes of choices; refused")
    if len(data) < 5:
        raise TokenError("the token is truncated")
    (crc,) = struct.unpack(">I", data[-4:])
    data = data[:-4]
    if zlib.crc32(data) != crc:
        raise TokenError("the token's checksum does not match: it was cut or mistyped")
    if data[0] != VERSION:
        raise TokenError(f"token format version {data[0]} is not supported (this blkrace reads {VERSION})")
    pos = 1
    scenario, pos = _read_str(data, pos)
    variant, pos = _read_str(data, pos)
    params, pos = _read_str(data, pos)
    if pos + 8 > len(data):
        raise TokenError("the token is truncated")
    fingerprint = bytes(data[pos : pos + 8])
    pos += 8
    count, pos = _read_varint(data, pos)
    if count > len(data) - pos:  # every choice takes at least one byte
        raise TokenError("the token is truncated")
    choices = []
    for _ in range(count):
        c, pos = _read_varint(data, pos)
        choices.append(c)
    if pos != len(data):
        raise TokenError("the token has trailing bytes")
    return Schedule(scenario, variant, params, fingerprint, tuple(choices))


def _inflate(packed):
    """zlib.decompress, bounded, and refusing anything after the stream."""
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(packed, MAX_DECODED_BYTES + 1)
    except zlib.error as exc:
        raise TokenError("the token is truncated or corrupt") from exc
    if len(data) > MAX_DECODED_BYTES or inflater.unconsumed_tail:
        raise TokenError(f"the token inflates to more than {MAX_DECODED_BYTES:,} bytes; refused")
    if not inflater.eof:
        raise TokenError("the token is truncated or corrupt")
    if inflater.unused_data:
        raise TokenError("the token has bytes after its end (two tokens joined, or extra text?)")
    return data
