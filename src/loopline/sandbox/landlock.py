"""Linux Landlock through its three system calls: a process restricts what it may open, for good.

After :func:`confine`, the process (and what it starts) may read, and execute from, only the given
folders and files, write only the given folders, and (kernels with Landlock ABI 4 or newer) open no TCP
connection but to the ports given and bind no TCP port. The restriction cannot be undone. See the kernel's
``Documentation/userspace-api/landlock.rst``.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["abi", "confine"]

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # the same numbers on every architecture
_VERSION = 1 << 0
_PATH_BENEATH, _NET_PORT = 1, 2
_NO_NEW_PRIVS = 38

_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_REMOVE_DIR, _REMOVE_FILE, _MAKE_CHAR, _MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
_MAKE_REG, _MAKE_SOCK, _MAKE_FIFO, _MAKE_BLOCK, _MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
_REFER, _TRUNCATE, _IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_BIND_TCP, _CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1

_READ = _EXECUTE | _READ_FILE | _READ_DIR
_FILE_ONLY = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


class _NetPortAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64))


_libc = ctypes.CDLL(None, use_errno=True)


def abi() -> int:
    """The kernel's Landlock ABI version; 0 when it has none (or it is disabled)."""
    version = _libc.syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_VERSION))
    return int(version) if version > 0 else 0


def _handled_fs(version: int) -> int:
    handled = (1 << 13) - 1  # every right of ABI 1
    if version >= 2:
        handled |= _REFER
    if version >= 3:
        handled |= _TRUNCATE
    if version >= 5:
        handled |= _IOCTL_DEV
    return handled


def _add(ruleset: int, path: Path, access: int, handled: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a path that does not exist grants nothing
    try:
        if not path.is_dir():
            access &= _FILE_ONLY
        rule = _PathBeneathAttr(access & handled, fd)
        if _libc.syscall(_ADD_RULE, ruleset, _PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)


def confine(read: Iterable[Path], write: Iterable[Path], connect: Iterable[int] = ()) -> int:
    """Restrict this process to reading ``read`` and writing ``write``, and to TCP connections to the ports
    ``connect`` names only (binding none); the ABI used, or 0 when the kernel has no Landlock (nothing is
    restricted then)."""
    version = abi()
    if version == 0:
        return 0
    handled = _handled_fs(version)
    attr = _RulesetAttr(handled, (_BIND_TCP | _CONNECT_TCP) if version >= 4 else 0, 0)
    if version >= 6:
        attr.scoped = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL
    size = ctypes.sizeof(_RulesetAttr) if version >= 6 else 16
    ruleset = _libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}")
    try:
        for path in read:
            _add(ruleset, path, _READ, handled)
        for path in write:
            _add(ruleset, path, handled, handled)
        for port in connect if version >= 4 else ():
            rule = _NetPortAttr(_CONNECT_TCP, port)
            if _libc.syscall(_ADD_RULE, ruleset, _NET_PORT, ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
                raise OSError(
                    ctypes.get_errno(), f"landlock_add_rule port {port}: {os.strerror(ctypes.get_errno())}"
                )
        if _libc.prctl(_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if _libc.syscall(_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_restrict_self: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)
    return version
