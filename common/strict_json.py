"""JSON read strictly: the files a2q reads (export manifests, engine parameters) are written by
a2q, so anything JSON allows but a2q never writes is refused instead of guessed at.

Refused, each with one line naming the key path: a duplicate key (``json`` would keep the
last), ``NaN`` / ``Infinity`` (not JSON), an integer longer than :data:`MAX_DIGITS` digits,
nesting deeper than :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import json

#: the deepest nesting a2q writes is 4 (manifest -> tensors -> name -> shape)
MAX_DEPTH = 16
#: int64 needs 19 digits; the manifests' fields are far smaller
MAX_DIGITS = 24


class StrictJSONError(ValueError):
    """Text that is not the JSON a2q writes; the message says what and where."""


def _pairs(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise StrictJSONError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def _constant(name):
    raise StrictJSONError(f"{name} is not a JSON number")


def _integer(text):
    digits = len(text.lstrip("-"))
    if digits > MAX_DIGITS:
        raise StrictJSONError(f"an integer of {digits} digits (at most {MAX_DIGITS})")
    return int(text)


def _check_depth(obj) -> None:
    stack = [(obj, 0)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise StrictJSONError(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(v, dict):
            stack.extend((c, depth + 1) for c in v.values())
        elif isinstance(v, list):
            stack.extend((c, depth + 1) for c in v)


def loads(text: str):
    """Parse ``text``; :class:`StrictJSONError` names the first thing refused."""
    try:
        obj = json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant,
                         parse_int=_integer)
    except RecursionError:
        raise StrictJSONError(f"nested deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise StrictJSONError(f"not valid JSON ({exc})") from None
    except ValueError as exc:  # float conversion of an absurd literal, and the hooks above
        raise StrictJSONError(str(exc)) from None
    _check_depth(obj)
    return obj


def read(path) -> object:
    """:func:`loads` of a file, which must be UTF-8."""
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StrictJSONError(f"not UTF-8 text (byte {exc.start})") from None
    return loads(text)
