"""The API's JSON parser. A module of its own: DRF imports the default parser classes while
it builds ``APIView``, so this must not import ``rest_framework.views`` (core.api does)."""

import io
import re

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# What no database column can hold: NUL, and a lone UTF-16 surrogate ("\ud800" in JSON,
# which Python decodes but UTF-8 cannot encode — PostgreSQL refused it with a 500).
_UNSAFE = re.compile("[\x00\ud800-\udfff]")
UNSAFE_TEXT = "Text may not contain NUL characters or unpaired surrogates (\\ud800–\\udfff)."


def has_unsafe_text(value) -> bool:
    if isinstance(value, str):
        return _UNSAFE.search(value) is not None
    if isinstance(value, dict):
        return any(has_unsafe_text(k) or has_unsafe_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_unsafe_text(v) for v in value)
    return False


class StrictJSONParser(JSONParser):
    """JSON, refusing what the database cannot hold (NUL characters, lone surrogates) and
    absurd nesting."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read() if stream is not None else b""
        try:
            data = super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        # JSON refuses raw control characters and UTF-8 cannot carry a surrogate, so both can
        # only come from a \u escape: a body without one needs no walk (a bulk request of
        # 1,000 tasks spent ~7 % of its time walking every value).
        if b"\\u" not in body:
            return data
        try:
            if has_unsafe_text(data):
                raise ParseError(UNSAFE_TEXT)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        return data


def whole_number(value: object, *, below: int = 2**31) -> int | None:
    """A non-negative whole number a client sent (an int, or ASCII digits), or None: never a
    ValueError (``"²"`` passes ``str.isdigit``, 5,000 digits pass it too and overflow
    ``int()``'s limit) and never beyond ``below`` (what the database column holds)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < below else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        number = int(value)
        return number if number < below else None
    return None
