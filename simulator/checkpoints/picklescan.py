"""A pickle checked before it is unpickled: one pass over its opcodes that builds
nothing, and refuses what no checkpoint needs and what would take the unpickler
unbounded time or memory (memo bombs, tuples that expand without end, millions of
storage references)."""

from __future__ import annotations

from simulator.checkpoints.source import MAX_TENSORS, fail
from simulator.errors import CheckpointError, shown

MAX_PICKLE_OPS = 64 * MAX_TENSORS
"""Most pickle opcodes accepted (a tensor of a real state_dict takes 20 to 30)."""


_NL = -1  # an argument ending in a newline
_NL2 = -2  # two such arguments (GLOBAL, INST)
_LEN1, _LEN4, _LEN8 = -3, -4, -5  # length-prefixed data (1-, 4- or 8-byte length)
_WIDTH = {_LEN1: 1, _LEN4: 4, _LEN8: 8}
# what an opcode does to the stack, for the walk below
(
    _NONE,
    _PUSH,
    _MARK,
    _STOP,
    _GET,
    _PUT,
    _MEMOIZE,
    _TUPLE,
    _TUPLE_N,
    _BUILT,
    _TO_MARK,
    _POP1,
    _POP2,
    _POP,
    _DUP,
    _REDUCE,
    _NEWOBJ_EX,
    _OBJ,
    _STACK_GLOBAL,
    _PERSID,
) = range(20)
_OPS: dict[bytes, tuple[int, int]] = {
    b"(": (0, _MARK), b".": (0, _STOP), b"0": (0, _POP), b"1": (0, _TO_MARK),
    b"2": (0, _DUP), b"N": (0, _PUSH), b"\x88": (0, _PUSH), b"\x89": (0, _PUSH),
    b"]": (0, _PUSH), b")": (0, _PUSH), b"}": (0, _PUSH), b"\x8f": (0, _PUSH),
    b"a": (0, _POP1), b"e": (0, _TO_MARK), b"l": (0, _BUILT), b"t": (0, _TUPLE),
    b"\x85": (0, _TUPLE_N), b"\x86": (0, _TUPLE_N), b"\x87": (0, _TUPLE_N),
    b"d": (0, _BUILT), b"s": (0, _POP2), b"u": (0, _TO_MARK), b"\x90": (0, _TO_MARK),
    b"\x91": (0, _BUILT), b"b": (0, _POP1), b"R": (0, _REDUCE), b"\x81": (0, _REDUCE),
    b"\x92": (0, _NEWOBJ_EX), b"o": (0, _OBJ), b"\x93": (0, _STACK_GLOBAL),
    b"\x94": (0, _MEMOIZE), b"Q": (0, _PERSID),
    b"K": (1, _PUSH), b"h": (1, _GET), b"q": (1, _PUT), b"\x80": (1, _NONE),
    b"\x82": (1, _PUSH), b"M": (2, _PUSH), b"\x83": (2, _PUSH),
    b"J": (4, _PUSH), b"j": (4, _GET), b"r": (4, _PUT), b"\x84": (4, _PUSH),
    b"G": (8, _PUSH), b"\x95": (8, _NONE),
    b"U": (_LEN1, _PUSH), b"C": (_LEN1, _PUSH), b"\x8c": (_LEN1, _PUSH), b"\x8a": (_LEN1, _PUSH),
    b"T": (_LEN4, _PUSH), b"B": (_LEN4, _PUSH), b"X": (_LEN4, _PUSH), b"\x8b": (_LEN4, _PUSH),
    b"\x8d": (_LEN8, _PUSH), b"\x8e": (_LEN8, _PUSH),
    b"I": (_NL, _PUSH), b"L": (_NL, _PUSH), b"F": (_NL, _PUSH), b"S": (_NL, _PUSH),
    b"V": (_NL, _PUSH), b"P": (_NL, _PERSID), b"g": (_NL, _GET), b"p": (_NL, _PUT),
    b"c": (_NL2, _PUSH), b"i": (_NL2, _OBJ),
}  # fmt: skip
"""Opcode -> (size of its argument, what it does to the stack), for pickle protocols
0 to 5 as ``pickletools`` describes them. The out-of-band buffer opcodes of protocol
5 (``BYTEARRAY8``, ``NEXT_BUFFER``, ``READONLY_BUFFER``), which no checkpoint needs,
are absent, and so refused."""
_TABLE: list[tuple[int, int] | None] = [_OPS.get(bytes([i])) for i in range(256)]
_OP_NAMES = {0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER"}
_MAX_LINE = 1024
MAX_TUPLE_NODES = 100_000
"""Most nodes a tuple from a pickle may expand to (counting shared members once per
use). Hashing or comparing a tuple walks its expansion, so a few hundred bytes of
tuples that each hold the previous one twice would take forever as a dict key."""


def scan_pickle(data: bytes, path: str, what: str) -> int | None:
    """Check the pickle at the start of ``data`` without building anything, and return
    its length (through STOP); None when ``data`` ends before STOP (read more).

    The opcodes are walked as the unpickler would, tracking for each stack entry and
    memo slot only how many nodes it expands to. Refused, as a
    :class:`CheckpointError`: unknown opcodes and the out-of-band buffer opcodes; more
    than :data:`MAX_PICKLE_OPS` opcodes or :data:`MAX_TENSORS` storage references; a
    tuple that expands to more than :data:`MAX_TUPLE_NODES` nodes; and memo indices
    larger than the number of opcodes before them (a pickler numbers its memo from 0,
    but the C unpickler sizes its memo array by the largest index: a 20-byte pickle
    that stores at index 2**27 would take gigabytes). Linear in the pickle's length.
    """
    try:
        return _walk(data, path, what)
    except IndexError:  # more pops than pushes: the unpickler would fail too
        raise fail(path, f"{what} is corrupt (pickle stack underflow)") from None


def _walk(data: bytes, path: str, what: str) -> int | None:
    table, n, pos, ops, persids = _TABLE, len(data), 0, 0, 0
    stack: list[int] = []  # expanded size of each entry
    marks: list[int] = []
    memo: dict[int, int] = {}
    limit = min(MAX_PICKLE_OPS, n)
    while pos < n:
        op = data[pos]
        entry = table[op]
        if entry is None:
            name = _OP_NAMES.get(op)
            if name:
                raise fail(path, f"{what}: refused pickle opcode {name}")
            raise fail(path, f"{what} is corrupt (unknown pickle opcode {op:#04x} at byte {pos})")
        ops += 1
        if ops > limit:
            raise fail(path, f"{what}: more than {MAX_PICKLE_OPS:,} pickle opcodes; refused")
        kind, action = entry
        start = pos = pos + 1
        if kind > 0:
            pos += kind
        elif kind < _NL2:
            width = _WIDTH[kind]
            if pos + width > n:
                return None
            length = int.from_bytes(data[pos : pos + width], "little", signed=kind == _LEN4)
            if length < 0:
                raise fail(path, f"{what} is corrupt (negative length at byte {pos})")
            pos += width + length
        elif kind < 0:
            for _ in range(-kind):
                end = data.find(b"\n", pos, pos + _MAX_LINE)
                if end < 0:
                    if n - pos < _MAX_LINE:
                        return None
                    raise fail(path, f"{what} is corrupt (argument line too long at byte {pos})")
                pos = end + 1
        if pos > n:
            return None
        if action == _PUSH:
            stack.append(1)
        elif action == _GET:
            stack.append(memo.get(data[start] if op == 0x68 else _index(data, op, start, pos), 1))
        elif action == _PUT or action == _MEMOIZE:
            if action == _MEMOIZE:
                index = len(memo)
            else:
                index = data[start] if op == 0x71 else _index(data, op, start, pos)
            if index is None or index > ops:
                raise _memo_bomb(
                    path, what, data[start:pos].rstrip(b"\n") if index is None else index
                )
            memo[index] = stack[-1]
        elif action == _MARK:
            marks.append(len(stack))
        elif action == _TUPLE or action == _TUPLE_N:
            k = marks.pop() if action == _TUPLE else len(stack) - (op - 0x84)
            size = 1 + sum(stack[k:])
            if k < 0 or size > MAX_TUPLE_NODES:
                if k < 0:
                    raise IndexError
                raise fail(
                    path,
                    f"{what}: a tuple of shared references that expands to more than "
                    f"{MAX_TUPLE_NODES:,} entries (hashing it would never end); refused",
                )
            del stack[k:]
            stack.append(size)
        elif action == _REDUCE:  # the result may hold its arguments
            stack[-2:] = [stack[-1]]
        elif action == _BUILT or action == _TO_MARK:
            del stack[marks.pop() :]
            if action == _BUILT:
                stack.append(1)
        elif action == _POP1:
            stack.pop()
        elif action == _POP2:
            del stack[-2:]
        elif action == _PERSID:
            persids += 1
            if persids > MAX_TENSORS:
                raise fail(
                    path,
                    f"{what}: more than {MAX_TENSORS:,} storage references (published "
                    "checkpoints hold a few thousand tensors per file); refused",
                )
            if op == 0x51:
                stack[-1] = 1
            else:
                stack.append(1)
        elif action == _STOP:
            return pos
        elif action == _POP:
            if stack and not (marks and marks[-1] == len(stack)):
                stack.pop()
            else:
                del stack[marks.pop() :]
        elif action == _DUP:
            stack.append(stack[-1])
        elif action == _NEWOBJ_EX:
            stack[-3:] = [stack[-2] + stack[-1]]
        elif action == _OBJ:
            k = marks.pop()
            size = sum(stack[k:]) or 1
            del stack[k:]
            stack.append(size)
        elif action == _STACK_GLOBAL:
            stack[-2:] = [1]
    return None


def _index(data: bytes, op: int, start: int, end: int) -> int | None:
    """The memo index argument of a GET or PUT opcode (None: not a number)."""
    if op in (0x67, 0x70):  # text forms, "123\n"
        text = data[start : end - 1]
        return int(text) if text.isdigit() and len(text) <= 18 else None
    return int.from_bytes(data[start:end], "little")


def _memo_bomb(path: str, what: str, index: object) -> CheckpointError:
    return fail(
        path,
        f"{what}: pickle memo index {shown(index, 24)} is larger than the pickle itself "
        "(it would make the unpickler allocate memory for that many entries); refused",
    )


def scan_whole(data: bytes, path: str, what: str) -> int:
    """:func:`scan_pickle` of a whole pickle in memory: its length."""
    end = scan_pickle(data, path, what)
    if end is None:
        raise fail(path, f"{what} is corrupt (it ends before its STOP opcode)")
    return end
