"""Schedule tokens: round trips, and clear refusals of anything else."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blkrace.engine.token import PREFIX, Schedule, TokenError, decode, encode

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
