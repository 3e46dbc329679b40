"""The data that may cross from a candidate's process to the trusted judge.

This module has no imports beyond the standard library and no daedal imports: its
source is also shipped, as text, into the candidate's and the judge's interpreters
(:mod:`daedal.eval._runners`), which cannot import daedal.

A value is encoded into JSON-safe data with a tag for each container type that JSON
lacks, so ``(1, 2)`` and ``[1, 2]`` stay different and ``{1: 'a'}`` keeps its int key.
Decoding builds only built-in types (``int``, ``float``, ``complex``, ``str``, ``bytes``,
``bool``, ``None``, ``list``, ``tuple``, ``set``, ``frozenset``, ``dict``) and :class:`Ref`,
an opaque handle of an object that stays in the candidate's process. Nothing the
candidate sends can run code in the judge: no ``__eq__`` of the candidate's exists on
the judge's side.
"""

import math

WIRE_MAX_DEPTH = 200


class Ref:
    """An object that stayed in the candidate's process (a class instance, a function...).

    The judge can pass it back to the candidate's functions or call it when it is
    callable; it compares equal only to itself.
    """

    __slots__ = ("id", "kind", "call")

    def __init__(self, ident, kind, call=None):
        self.id = ident
        self.kind = kind
        self.call = call

    def __call__(self, *args, **kwargs):
        if self.call is None:
            raise TypeError(f"the candidate's {self.kind} object is not callable")
        return self.call(self, args, kwargs)

    def __repr__(self):
        return f"<candidate {self.kind} #{self.id}>"


def wire_encode(value, refs=None, depth=0):
    """JSON-safe data for ``value``; objects that are not plain data become references.

    Args:
        value: What to send.
        refs: The candidate's table of referenced objects (a list); None refuses them.
        depth: Nesting so far (values deeper than ``WIRE_MAX_DEPTH`` are refused).

    Raises:
        TypeError: A value that is neither data nor referable (``refs`` is None).
        ValueError: Nesting too deep.
    """
    if depth > WIRE_MAX_DEPTH:
        raise ValueError("value nested too deeply to send")
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return value if -(2**53) < value < 2**53 else {"t": "int", "v": format(value, "x")}
    if t is float:
        return value if math.isfinite(value) else {"t": "float", "v": repr(value)}
    d = depth + 1
    if t is list:
        return [wire_encode(v, refs, d) for v in value]
    if t is tuple:
        return {"t": "tuple", "v": [wire_encode(v, refs, d) for v in value]}
    if t is dict:
        return {"t": "dict", "v": [[wire_encode(k, refs, d), wire_encode(v, refs, d)] for k, v in value.items()]}
    if t is set or t is frozenset:
        return {"t": t.__name__, "v": [wire_encode(v, refs, d) for v in value]}
    if t is complex:
        return {"t": "complex", "v": [wire_encode(value.real), wire_encode(value.imag)]}
    if t is bytes:
        return {"t": "bytes", "v": value.hex()}
    if isinstance(value, Ref):
        return {"t": "ref", "v": value.id}
    # numpy scalars (np.int64, np.float32, np.bool_...) stand for their Python value.
    if getattr(t, "__module__", "") == "numpy" and hasattr(value, "item") and getattr(value, "shape", None) == ():
        return wire_encode(value.item(), refs, depth)
    # Subclasses of the built-in types travel as their base value: an overridden
    # __eq__ or __hash__ does not cross.
    for base in (int, float, str, bytes, complex, tuple, list, dict, frozenset, set):
        if isinstance(value, base):
            if base is dict:
                return wire_encode(dict(dict.items(value)), refs, depth)
            if base in (tuple, list, set, frozenset):
                return wire_encode(base(base.__iter__(value)), refs, depth)
            return wire_encode(base.__new__(base, value), refs, depth)
    if refs is None:
        raise TypeError(f"cannot send a {t.__name__} value")
    refs.append(value)
    return {
        "t": "ref",
        "v": len(refs) - 1,
        "kind": str(getattr(t, "__name__", "object"))[:60],
        "callable": callable(value),
    }


def wire_decode(data, make_ref=None, depth=0):
    """Rebuild a value from :func:`wire_encode` data out of built-in types only.

    Args:
        data: Parsed JSON.
        make_ref: Builds the local stand-in of a reference from its wire form; None
            refuses references.

    Raises:
        ValueError: Data that :func:`wire_encode` cannot have produced.
    """
    if depth > WIRE_MAX_DEPTH:
        raise ValueError("value nested too deeply")
    t = type(data)
    if data is None or t is bool or t is str or t is int:
        return data
    if t is float:
        return data
    d = depth + 1
    if t is list:
        return [wire_decode(v, make_ref, d) for v in data]
    if t is not dict or set(data) - {"t", "v", "kind", "callable"} or "t" not in data or "v" not in data:
        raise ValueError(f"not wire data: {str(data)[:80]}")
    tag, v = data["t"], data["v"]
    if tag == "int" and type(v) is str:
        return int(v, 16)
    if tag == "float" and v in ("inf", "-inf", "nan"):
        return float(v)
    if tag == "bytes" and type(v) is str:
        return bytes.fromhex(v)
    if tag == "complex" and type(v) is list and len(v) == 2:
        return complex(float(wire_decode(v[0], None, d)), float(wire_decode(v[1], None, d)))
    if tag == "ref" and type(v) is int:
        if make_ref is None:
            raise ValueError("a reference where none is allowed")
        return make_ref(data)
    if type(v) is not list:
        raise ValueError(f"not wire data: {str(data)[:80]}")
    if tag == "tuple":
        return tuple(wire_decode(x, make_ref, d) for x in v)
    if tag == "set":
        return {wire_decode(x, make_ref, d) for x in v}
    if tag == "frozenset":
        return frozenset(wire_decode(x, make_ref, d) for x in v)
    if tag == "dict":
        out = {}
        for pair in v:
            if type(pair) is not list or len(pair) != 2:
                raise ValueError("a dict entry is not a pair")
            out[wire_decode(pair[0], make_ref, d)] = wire_decode(pair[1], make_ref, d)
        return out
    raise ValueError(f"unknown wire tag {str(tag)[:40]!r}")


def wire_dumps(message):
    """One line of JSON (no NaN literals: non-finite floats are tagged)."""
    import json  # here, not at the top: the single-process protocol never needs it

    return json.dumps(message, allow_nan=False, separators=(",", ":")) + "\n"


def wire_loads(line):
    """Parse one message line; raises ValueError for anything that is not a JSON object."""
    import json

    message = json.loads(line)
    if type(message) is not dict:
        raise ValueError("a message is not a JSON object")
    return message
