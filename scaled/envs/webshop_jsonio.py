"""Reading WebShop release files (JSON) with clear errors, without loading a whole file at once.

The release files are large (``items_shuffle.json`` has ~1.18M products). `iter_json_list` and
`iter_json_dict` stream the items of a top-level JSON list or object with the standard library's
C decoder (``json.JSONDecoder.raw_decode`` on a sliding buffer), so memory holds one chunk plus the
items the caller keeps. Every problem is a `ValueError` that names the file and where it is:

- a file that is not UTF-8, empty, of the wrong top-level type, or malformed (line and character);
- a file that ends early (truncated download): "ends before the closing ']'";
- a record of the wrong type, or a required field that is missing or of the wrong type (`check_field`).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Callable, Iterator

_WS = re.compile(r"[ \t\n\r]*")
CHUNK_CHARS = 1 << 24
"""Characters read per chunk (16 Mi)."""
_MAX_ITEM_CHARS = 1 << 26
"""A single record larger than this (64 Mi characters) is taken as malformed rather than read on."""


class _Stream:
    """A sliding text buffer over a file that tracks absolute line numbers and offsets."""

    def __init__(self, path: str | os.PathLike, what: str, chunk: int):
        self.path, self.what, self.chunk = str(path), what, chunk
        self.file = open(path, encoding="utf-8")
        self.buf, self.pos, self.eof = "", 0, False
        self.base_offset, self.base_line = 0, 1  # of buf[0]
        self.decoder = json.JSONDecoder()

    def close(self) -> None:
        self.file.close()

    def error(self, message: str, pos: int | None = None) -> ValueError:
        pos = self.pos if pos is None else pos
        line = self.base_line + self.buf.count("\n", 0, pos)
        return ValueError(f"{self.path}: {message} (the {self.what} file, line {line}, character {self.base_offset + pos + 1})")

    def fill(self) -> bool:
        """Append a chunk (dropping what was consumed); False at the end of the file."""
        if self.eof:
            return False
        try:
            text = self.file.read(self.chunk)
        except UnicodeDecodeError as exc:
            raise ValueError(f"{self.path}: the {self.what} file is not UTF-8 text ({exc.reason} "
                             f"near byte {exc.start} of a chunk)") from exc
        dropped = self.buf[:self.pos]
        self.base_line += dropped.count("\n")
        self.base_offset += len(dropped)
        self.buf, self.pos = self.buf[self.pos:] + text, 0
        if not text:
            self.eof = True
        return bool(text)

    def peek(self) -> str:
        """The next non-space character ("" at the end of the file), without consuming it."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf) or not self.fill():
                return self.buf[self.pos:self.pos + 1]

    def take(self, expected: str, closing: str) -> str:
        char = self.peek()
        if char == "":
            raise self.error(f"the file ends before the closing {closing!r} (truncated?)")
        if char not in expected:
            raise self.error(f"malformed JSON: expected one of {list(expected)}, found {char!r}")
        self.pos += 1
        return char

    def value(self, closing: str) -> Any:
        """Decode the next JSON value (reading more of the file while it is incomplete)."""
        if self.peek() == "":
            raise self.error(f"the file ends before the closing {closing!r} (truncated?)")
        while True:
            try:
                obj, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                incomplete = len(self.buf) - exc.pos < _MAX_ITEM_CHARS
                if not self.eof and incomplete and self.fill():
                    continue
                if self.eof:
                    raise self.error(f"malformed or truncated JSON: {exc.msg}", exc.pos) from None
                raise self.error(f"malformed JSON: {exc.msg}", exc.pos) from None
            if end == len(self.buf) and not self.eof and self.fill():
                continue  # a number may go on in the next chunk
            self.pos = end
            return obj


def _open(path: str | os.PathLike, what: str, opening: str, chunk: int) -> _Stream:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: the {what} file does not exist")
    stream = _Stream(path, what, chunk)
    first = stream.peek()
    if first == "":
        stream.close()
        raise ValueError(f"{path}: the {what} file is empty")
    if first != opening:
        stream.close()
        kind = "list" if opening == "[" else "object"
        raise stream.error(f"expected a JSON {kind} (starting with {opening!r}), found {first!r}")
    stream.pos += 1
    return stream


def _finish(stream: _Stream) -> None:
    if stream.peek() != "":
        raise stream.error("extra data after the end of the JSON value")


def _members(path: str | os.PathLike, what: str, opening: str, chunk: int,
             read: Callable[[_Stream, str], Any]) -> Iterator[Any]:
    """``read(stream, closing)`` for each member of the top-level JSON list (``[``) or object (``{``) in ``path``."""
    closing = "]" if opening == "[" else "}"
    stream = _open(path, what, opening, chunk)
    try:
        if stream.peek() == closing:
            stream.pos += 1
        else:
            while True:
                yield read(stream, closing)
                if stream.take("," + closing, closing) == closing:
                    break
        _finish(stream)
    finally:
        stream.close()


def _value(stream: _Stream, closing: str) -> Any:
    return stream.value(closing)


def _key_value(stream: _Stream, closing: str) -> tuple[str, Any]:
    if stream.peek() != '"':
        stream.take('"', closing)  # raises: a key must be a string
    key = stream.value(closing)
    stream.take(":", closing)
    return key, stream.value(closing)


def iter_json_list(path: str | os.PathLike, what: str, *, chunk: int = CHUNK_CHARS) -> Iterator[Any]:
    """Yield the items of the JSON list in ``path`` one at a time.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not UTF-8, empty, not a list, malformed or truncated (file, line and character).
    """
    yield from _members(path, what, "[", chunk, _value)


def iter_json_dict(path: str | os.PathLike, what: str, *, chunk: int = CHUNK_CHARS) -> Iterator[tuple[str, Any]]:
    """Yield the ``(key, value)`` pairs of the JSON object in ``path`` one at a time (see `iter_json_list`)."""
    yield from _members(path, what, "{", chunk, _key_value)


_TYPE_NAMES = {str: "a string", list: "a list", dict: "an object", int: "an integer", float: "a number",
               type(None): "null", bool: "a boolean"}


def type_name(value: Any) -> str:
    """``"a string"``, ``"a list"``, ... for error messages."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def check_field(record: Any, key: str, types: tuple[type, ...], where: str, *, required: bool = True) -> Any:
    """``record[key]`` if it has one of ``types``, else a ValueError naming ``where`` and the field.

    Args:
        record: a decoded JSON object (anything else is reported as a wrong record type).
        key: the field name.
        types: accepted Python types (``type(None)`` for null).
        where: file and record, e.g. ``"items_shuffle.json: product #12 (asin B0...)"``.
        required: a missing field is an error (else ``None`` is returned).
    """
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected an object, got {type_name(record)}")
    if key not in record:
        if required:
            raise ValueError(f"{where}: no {key!r} field")
        return None
    value = record[key]
    if not isinstance(value, types):
        expected = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
        raise ValueError(f"{where}: field {key!r} must be {expected}, got {type_name(value)} {value!r:.60}")
    return value
