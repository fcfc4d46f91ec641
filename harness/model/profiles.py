"""Payload profiles for the workload: deterministic for a seed, so a run can be replayed exactly.

``encoding_faults_*`` profiles mix rows a target encoding cannot hold (or that are not UTF-8
at all) into ordinary ones; which rows are bad is part of the profile, not a guess.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from harness.errors import HarnessError

ASCII = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-_"
MIXED = ["héllo", "Grüße", "Ελληνικά", "кириллица", "עברית", "عربى", "हिन्दी", "😀", "🚀", "e\u0301", "ß"]
CJK = ("的一是不了人我在有他这中大来上国个到说们为子和你地出道"
       "也时年得就那要下以生会自着去之过家学对可她里后小么心多天"
       "没日于起还发成事只作当想看文无开手十用主行方又如前所本见")


def _ascii(rng: random.Random, i: int, size: int) -> bytes:
    return "".join(rng.choice(ASCII) for _ in range(size)).encode()


def _mixed(rng: random.Random, i: int, size: int) -> bytes:
    parts, length = [], 0
    while length < size:
        word = rng.choice(MIXED)
        parts.append(word)
        length += len(word.encode())
    return " ".join(parts).encode()


def _cjk(rng: random.Random, i: int, size: int) -> bytes:
    return "".join(rng.choice(CJK) for _ in range(max(1, size // 3))).encode()


def _near_limit(rng: random.Random, i: int, size: int) -> bytes:
    # 'size' here is the sink's limit: rows just under it must go through whole.
    return _ascii(rng, i, 64) + b"n" * max(0, size - 64 - 256)


GBK_UNENCODABLE = ["😀", "ก", "∯", "🚀"]


def _gbk_faults(rng: random.Random, i: int, size: int) -> bytes:
    if i % 5 == 0:
        return f"bad {rng.choice(GBK_UNENCODABLE)} row {i}".encode()
    return f"好 row {i} {_ascii(rng, i, 20).decode()}".encode()


def _invalid_utf8(rng: random.Random, i: int, size: int) -> bytes:
    if i % 7 == 0:
        return b"\xff\xfe broken " + str(i).encode()
    return _ascii(rng, i, size)


def _hostile(rng: random.Random, i: int, size: int) -> bytes:
    """Every tenth row not UTF-8, every tenth oversize (``size`` is the sink's limit), every
    tenth with NUL bytes (legal text), the rest mixed scripts and emoji."""
    kind = i % 10
    if kind == 0:
        return b"\xc3\x28 invalid " + str(i).encode()
    if kind == 1:
        return b"o" * (size + 100)
    if kind == 2:
        return f"nul\x00inside\x00{i}".encode()
    return _mixed(rng, i, 80)


def _size_mix(rng: random.Random, i: int, size: int) -> bytes:
    """Mostly small records, every twentieth ``size`` bytes: a topic whose record limit is lowered
    between the two refuses the large ones alone, and whole batches of the small ones."""
    return _ascii(rng, i, size) if i % 20 == 7 else _ascii(rng, i, 150)


HOSTILE_BAD_SHARE = 0.2  # rows of the hostile profile that can never be delivered

PROFILES: dict[str, Callable[[random.Random, int, int], bytes]] = {
    "ascii": _ascii,
    "mixed": _mixed,
    "cjk": _cjk,
    "near_limit": _near_limit,
    "encoding_faults_gbk": _gbk_faults,
    "encoding_faults_utf8": _invalid_utf8,
    "hostile": _hostile,
    "size_mix": _size_mix,
}


def payloads(profile: str, count: int, size: int, seed: int, start: int = 0) -> list[bytes]:
    if profile not in PROFILES:
        raise HarnessError(f"unknown payload profile {profile!r}; profiles: {', '.join(sorted(PROFILES))}")
    rng = random.Random(f"{seed}:{profile}:{start}")
    make = PROFILES[profile]
    return [make(rng, start + i, size) for i in range(count)]
