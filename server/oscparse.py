"""A strict, bounded OSC 1.0 packet parser: the first check every datagram passes.

python-osc's parser skips unknown type tags with one ``logging.warning`` each (a 64 KB
tag string becomes 64,000 log lines written on the OSC thread, holding the GIL the audio
callback needs), recurses once per nested bundle and copies the rest of the packet at
every level. This one reads with offsets into one buffer, refuses what it does not
understand with a reason, and bounds nesting depth and message count, so a hostile packet
costs about as much as a good one of the same size.

Accepted argument types: ``i h f d s S b T F N`` (int32, int64, float32, float64, string,
symbol, blob, true, false, nil). Anything else (arrays, timetags, chars, MIDI, RGBA,
``I``, unknown letters) is refused. A message with no type tag string (OSC 1.0 allows
older senders to omit it) is accepted only when it has no arguments.
"""

from __future__ import annotations

import struct

__all__ = [
    "OscParseError",
    "Timetag",
    "parse_packet",
    "IMMEDIATE",
    "MAX_BUNDLE_DEPTH",
    "MAX_MESSAGES_PER_PACKET",
]

#: Timetag 1 (0x0000000000000001): "immediately".
IMMEDIATE = None
#: Bundles inside bundles, at most this deep (the outer bundle is depth 1).
MAX_BUNDLE_DEPTH = 8
#: Messages one packet may carry; each becomes engine work, so a 64 KB bundle of tiny
#: messages must not turn into thousands of events at once.
MAX_MESSAGES_PER_PACKET = 64

#: Seconds from the NTP epoch (1900) to the Unix epoch (1970).
NTP_TO_UNIX = 2208988800


class Timetag(float):
    """A bundle's timetag: Unix seconds (a float, as it is compared and printed), with the
    exact 64-bit NTP value it was sent as (``ntp``: seconds since 1900 times 2**32), from
    which :class:`server.scheduler.Clock` places it on the sample grid without the float's
    rounding (at today's dates a float second is good to 0.2 us, a hundredth of a frame,
    enough to move a timetag lying near the middle of two samples across)."""

    __slots__ = ("ntp",)

    @classmethod
    def from_ntp(cls, ntp: int) -> Timetag:
        t = cls((ntp >> 32) - NTP_TO_UNIX + (ntp & 0xFFFFFFFF) / 2**32)
        t.ntp = ntp
        return t

_BUNDLE = b"#bundle\x00"
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
_U64 = struct.Struct(">Q")


class OscParseError(ValueError):
    """A packet that is not well-formed OSC; ``address`` is the message's address when it
    could be read (so that the ``/fail`` names it), else ``""``."""

    def __init__(self, reason: str, address: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.address = address


Timed = tuple  # (wall-clock time or None for immediate, address, args)


def parse_packet(data: bytes) -> tuple[bool, list[Timed]]:
    """``(is_bundle, [(when, address, args), ...])`` in packet order; ``when`` is a Unix
    time (seconds) or None (immediately). Raises :class:`OscParseError`."""
    if not data:
        raise OscParseError("empty packet")
    if len(data) % 4:
        raise OscParseError(
            f"packet size must be a multiple of 4 bytes, got {len(data)}", _address_hint(data)
        )
    if data.startswith(_BUNDLE):
        out: list[Timed] = []
        _bundle(data, 0, len(data), 1, out)
        return True, out
    if data[:1] == b"/":
        address, args = _message(data, 0, len(data))
        return False, [(None, address, args)]
    raise OscParseError("not an OSC message or bundle (it must start with '/' or '#bundle')")


def _address_hint(data: bytes) -> str:
    """The address of a broken message, where one can be read (for the /fail)."""
    if data[:1] != b"/":
        return ""
    stop = data.find(b"\x00")
    try:
        return data[:stop].decode("utf-8") if stop > 0 else ""
    except UnicodeDecodeError:
        return ""


def _string(data: bytes, pos: int, end: int, what: str, address: str = "") -> tuple[str, int]:
    """A NUL-terminated, 4-byte padded UTF-8 string at ``pos``; (text, next position)."""
    stop = data.find(b"\x00", pos, end)  # no copy of the rest of the packet
    if stop < 0:
        raise OscParseError(f"{what} is not NUL-terminated", address)
    nxt = pos + ((stop - pos) // 4 + 1) * 4
    if nxt > end:
        raise OscParseError(f"{what} padding runs past the end of the packet", address)
    try:
        text = data[pos:stop].decode("utf-8")
    except UnicodeDecodeError:
        raise OscParseError(f"{what} is not valid UTF-8", address) from None
    return text, nxt


def _message(data: bytes, pos: int, end: int) -> tuple[str, list]:
    address, pos = _string(data, pos, end, "address")
    if not address.startswith("/"):
        raise OscParseError("address must start with '/'")
    if pos == end:
        return address, []
    if data[pos] != 0x2C:  # ","
        raise OscParseError(
            "missing type tag string (arguments without a ',' type tag cannot be read)", address
        )
    tags, pos = _string(data, pos, end, "type tag string", address)
    args: list = []
    for tag in tags[1:]:
        if tag == "i" or tag == "h" or tag == "f" or tag == "d":
            st = _I32 if tag == "i" else _I64 if tag == "h" else _F32 if tag == "f" else _F64
            if pos + st.size > end:
                raise OscParseError(f"argument {len(args) + 1} ('{tag}') is truncated", address)
            args.append(st.unpack_from(data, pos)[0])
            pos += st.size
        elif tag == "s" or tag == "S":
            text, pos = _string(data, pos, end, f"argument {len(args) + 1} (string)", address)
            args.append(text)
        elif tag == "b":
            if pos + 4 > end:
                raise OscParseError(f"argument {len(args) + 1} (blob) is truncated", address)
            n = _I32.unpack_from(data, pos)[0]
            stop = pos + 4 + n
            if n < 0 or stop > end:
                raise OscParseError(f"argument {len(args) + 1} (blob) is truncated", address)
            args.append(data[pos + 4 : stop])
            pos = stop + (-n % 4)
        elif tag == "T":
            args.append(True)
        elif tag == "F":
            args.append(False)
        elif tag == "N":
            args.append(None)
        else:
            shown = tag if tag.isprintable() else repr(tag)
            raise OscParseError(
                f"unsupported OSC type tag '{shown}' (accepted: i h f d s S b T F N)", address
            )
    if pos != end:
        raise OscParseError(f"{end - pos} bytes left after the last argument", address)
    return address, args


def _bundle(data: bytes, pos: int, end: int, depth: int, out: list) -> None:
    if depth > MAX_BUNDLE_DEPTH:
        raise OscParseError(f"bundles nested more than {MAX_BUNDLE_DEPTH} deep")
    if end - pos < 16:
        raise OscParseError("bundle is too short for its timetag")
    tag = _U64.unpack_from(data, pos + 8)[0]
    when = IMMEDIATE if tag == 1 else Timetag.from_ntp(tag)
    pos += 16
    while pos < end:
        if pos + 4 > end:
            raise OscParseError("bundle element size is truncated")
        size = _I32.unpack_from(data, pos)[0]
        pos += 4
        if size <= 0 or size % 4 or pos + size > end:
            raise OscParseError(
                f"bundle element size {size} is not a positive multiple of 4 within the packet"
            )
        if data[pos : pos + 8] == _BUNDLE:
            _bundle(data, pos, pos + size, depth + 1, out)
        elif data[pos] == 0x2F:  # "/"
            if len(out) >= MAX_MESSAGES_PER_PACKET:
                raise OscParseError(
                    f"a packet may carry at most {MAX_MESSAGES_PER_PACKET} messages"
                )
            address, args = _message(data, pos, pos + size)
            out.append((when, address, args))
        else:
            raise OscParseError("bundle element is neither a message nor a bundle")
        pos += size
