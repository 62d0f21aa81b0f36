"""Checksums and range rules that tell real identifiers from look-alike digit runs."""

from __future__ import annotations


def luhn_valid(digits: str) -> bool:
    """The Luhn check every payment card number passes (digits only)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """ISO 13616 mod-97 check of a compact, upper-case IBAN."""
    if not 15 <= len(iban) <= 34 or not iban[:2].isalpha() or not iban[2:4].isdigit():
        return False
    rearranged = iban[4:] + iban[:4]
    # Letters count as 10..35; int() of the joined string does the mod-97 arithmetic exactly.
    numeric = "".join(str(int(char, 36)) for char in rearranged)
    return int(numeric) % 97 == 1


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """SSA rules: area never 000, 666 or 9xx; group never 00; serial never 0000."""
    return area not in {"000", "666"} and area[0] != "9" and group != "00" and serial != "0000"
