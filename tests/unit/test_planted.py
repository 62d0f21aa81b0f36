"""Planted contact data is found where it leaks, and not inside a timestamp's digits."""

from __future__ import annotations

from tests.fixtures.planted import found, leaks


def test_a_local_number_counts_on_its_own() -> None:
    assert found(b"5550015", b"called 5550015 today") is not None
    assert found(b"5550015", b"to 555-0015 or 5550015.") is not None
    assert found(b"5550015", b"+14155550015") is None  # the whole-phone needle catches it


def test_a_local_number_inside_a_timestamp_is_not_a_leak() -> None:
    assert found(b"5550015", b'created{channel="sms"} 1.7966745550015454e+09') is None


def test_a_leak_is_named_with_its_haystack_and_context() -> None:
    haystack = b"x" * 100 + b"to planted.person1@corpus.example" + b"y" * 100
    found_in = leaks([b"planted.person1", b"Plantedname1"], clean=b"nothing", logs=haystack)
    # 80 bytes either side of the needle: 77 x's and "to " before, the address's rest after.
    shown = b"x" * 77 + b"to planted.person1@corpus.example" + b"y" * 65
    assert found_in == [(b"planted.person1", "logs", shown)]
