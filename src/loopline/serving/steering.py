"""Steer new connections to the workers that are up, among listening sockets sharing a port.

The supervisor of ``loopline serve --workers N`` holds one ``SO_REUSEPORT`` socket per worker slot, so a
worker that dies loses only the connections it had accepted: those waiting in its socket's queue stay there
for its replacement. While a slot has no live worker, a small classic BPF program attached to the group
sends new connections to the live slots only (at random, evenly), instead of letting them wait. Where the
kernel has no such option (not Linux), the kernel's own hashing spreads connections over every slot.
"""

from __future__ import annotations

import contextlib
import ctypes
import socket
import struct
from collections.abc import Sequence

__all__ = ["steer"]

SO_ATTACH_REUSEPORT_CBPF = 51
SO_DETACH_REUSEPORT_BPF = 68

_LOAD_RANDOM = (0x20, 0xFFFFF000 + 56)  # BPF_LD|BPF_W|BPF_ABS of SKF_AD_OFF + SKF_AD_RANDOM
_MODULO = 0x94  # BPF_ALU|BPF_MOD|BPF_K
_JUMP_IF_EQUAL = 0x15  # BPF_JMP|BPF_JEQ|BPF_K
_RETURN = 0x06  # BPF_RET|BPF_K


def program(live: Sequence[int]) -> list[tuple[int, int, int, int]]:
    """Instructions (code, jt, jf, k) answering one of the ``live`` socket indexes at random."""
    code, offset = _LOAD_RANDOM
    instructions = [(code, 0, 0, offset), (_MODULO, 0, 0, len(live))]
    for choice, index in enumerate(live):
        instructions += [(_JUMP_IF_EQUAL, 0, 1, choice), (_RETURN, 0, 0, index)]
    instructions.append((_RETURN, 0, 0, live[0]))
    return instructions


def steer(group: socket.socket, live: Sequence[int]) -> bool:
    """Send the group's new connections to the sockets at ``live`` (indexes in listen order).

    ``group`` is any socket of the group. Answers False when the kernel cannot steer (the caller then
    relies on its queues alone); with no live socket the steering is removed.
    """
    if not live:
        with contextlib.suppress(OSError):
            group.setsockopt(socket.SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, 0)
        return False
    instructions = program(live)
    filters = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in instructions))
    fprog = struct.pack("HP", len(instructions), ctypes.addressof(filters))
    try:
        group.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)
    except OSError:
        return False
    return True
