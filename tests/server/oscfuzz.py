"""Malformed and hostile OSC datagrams, each with the reply the host owes it.

:func:`raw_cases` yields ``(datagram, expected)``: ``expected`` is the address the
``/fail`` must name (``""`` where the packet has no readable address), or None for a
valid packet that gets no reply (notes, controllers). Seeded: the same run every time.
"""

from __future__ import annotations

import random
import struct

from pythonosc import osc_bundle_builder, osc_message, osc_message_builder

#: Expected reply: one /fail, naming any address.
ANY = "*"
#: The largest UDP payload over IPv4 loopback, rounded down to a multiple of 4.
MAX_DGRAM = 65504


def pad(b: bytes) -> bytes:
    return b + b"\x00" * (4 - len(b) % 4)


def raw_message(address: bytes, tags: bytes | None, payload: bytes = b"") -> bytes:
    out = pad(address)
    if tags is not None:
        out += pad(b"," + tags)
    return out + payload


def msg(address: str, *args, types: str | None = None) -> bytes:
    b = osc_message_builder.OscMessageBuilder(address=address)
    for i, a in enumerate(args):
        b.add_arg(a, types[i] if types else None)
    return b.build().dgram


def bundle_of(*contents: bytes, timetag: int = 1) -> bytes:
    out = b"#bundle\x00" + struct.pack(">Q", timetag)
    for c in contents:
        out += struct.pack(">i", len(c)) + c
    return out


def nested(depth: int, inner: bytes) -> bytes:
    for _ in range(depth):
        inner = bundle_of(inner)
    return inner


def timed_bundle(t: float, *messages: bytes) -> bytes:
    b = osc_bundle_builder.OscBundleBuilder(t)
    for m in messages:
        b.add_content(osc_message.OscMessage(m))
    return b.build().dgram


def raw_cases(n: int, seed: int = 7):
    """``n`` cases: mostly malformed, some valid notes/controllers (so that the host
    plays while it is attacked). Valid notes are on channel 16 and always released.

    ``expected``: the address the one ``/fail`` must name, ``""`` for a packet with no
    readable address, ``ANY`` for one ``/fail`` naming whatever address random bytes
    happened to spell, None for no reply at all."""
    rng = random.Random(seed)
    good = msg("/note", 60, 100, 2)
    makers = [
        # truncated messages, at every length including not a multiple of 4
        lambda: (good[: rng.randrange(1, len(good))], ANY),
        # wrong type tags: more tags than data, fewer tags than data, tags lying about data
        lambda: (raw_message(b"/note", b"iii", struct.pack(">i", 60)), "/note"),
        lambda: (raw_message(b"/note", b"i", struct.pack(">iii", 60, 100, 1)), "/note"),
        lambda: (raw_message(b"/cc", b"ss", struct.pack(">ii", 7, 100)), "/cc"),
        lambda: (raw_message(b"/prompt", b"s", b"abc"), "/prompt"),  # no NUL
        # missing type tag string
        lambda: (raw_message(b"/note", None, struct.pack(">ii", 60, 100)), "/note"),
        # unknown or unsupported types
        lambda: (
            raw_message(
                b"/note",
                rng.choice([b"x", b"c", b"m", b"t", b"I", b"r", b"[ii]", b"\xc3\xa9"]),
                b"\x00" * 8,
            ),
            "/note",
        ),
        # huge strings (the prompt limit and the packet limit)
        lambda: (msg("/prompt", "x" * rng.choice([1001, 5000, 60000])), "/prompt"),
        lambda: (raw_message(b"/" + b"a" * 60000, b"i", b"\x00" * 4), "/" + "a" * 60000),
        # NaN, infinities, negative and huge numbers
        lambda: (msg("/note", float(rng.choice(["nan", "inf", "-inf"])), 100), "/note"),
        lambda: (msg("/bend", float("nan"), types="d"), "/bend"),
        lambda: (msg("/param/sustain", float("-inf")), "/param/sustain"),
        lambda: (msg("/note", rng.choice([-1, -(2**31), 2**31 - 1, 128]), 100), "/note"),
        lambda: (msg("/sync", 2**62, types="h"), "/sync"),
        lambda: (msg("/notify", -5), "/notify"),
        lambda: (msg("/program", 2**40, types="h"), "/program"),
        # nested, empty and broken bundles
        lambda: (nested(rng.randrange(9, 40), msg("/note", 61, 100, 16)), ""),
        lambda: (bundle_of(), None),  # an empty bundle: nothing to do, nothing to say
        lambda: (bundle_of(bundle_of(), bundle_of()), None),
        lambda: (b"#bundle\x00" + struct.pack(">Qi", 1, -8) + b"\x00" * 8, ""),
        lambda: (b"#bundle\x00" + struct.pack(">Qi", 1, 4000) + b"\x00" * 8, ""),
        lambda: (b"#bundle\x00" + struct.pack(">Q", 1)[:4], ""),  # timetag cut short
        lambda: (bundle_of(*[msg("/cc", 1, 0, 16)] * 65), ""),  # too many messages
        # a bundle with one bad message applies none of it
        lambda: (bundle_of(msg("/note", 62, 100, 16), msg("/note", 62, 300, 16)), "/note"),
        # a 64 KB packet of random bytes, and one that starts like OSC
        lambda: (rng.randbytes(MAX_DGRAM), ANY),
        lambda: (b"/a\x00\x00,s\x00\x00" + rng.randbytes(MAX_DGRAM - 8), "/a"),
        # bytes that are not OSC at all
        lambda: (
            rng.choice(
                [
                    b"GET / HTTP/1.1\r\n\r\n",
                    b'{"note": 60}',
                    b"\x00" * 4,
                    b"\xff" * 16,
                    b"#bundl",
                    b"hello world!",
                ]
            ),
            "",
        ),
        lambda: (rng.randbytes(rng.randrange(1, 200)), ANY),
        # invalid UTF-8
        lambda: (raw_message(b"/prompt", b"s", pad(b"\xff\xfe bad")), "/prompt"),
        lambda: (raw_message(b"/\xff\xfe", b"", b""), ""),
        # valid traffic: the host keeps playing through all of the above
        lambda: (msg("/cc", rng.randrange(128), rng.randrange(128), 16), None),
        lambda: (msg("/bend", rng.uniform(-1, 1), 16), None),
    ]
    held: list[int] = []
    for i in range(n):
        if i % 10 == 0:
            if held:
                yield msg("/note/off", held.pop(), 16), None
            else:
                p = rng.randrange(36, 96)
                held.append(p)
                yield msg("/note", p, rng.randrange(1, 128), 16), None
            continue
        yield rng.choice(makers)()
    for p in held:
        yield msg("/note/off", p, 16), None
