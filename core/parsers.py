"""The API's JSON parser. A module of its own: DRF imports the default parser classes while
it builds ``APIView``, so this must not import ``rest_framework.views`` (core.api does)."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def has_nul(value, depth: int = 0) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


class StrictJSONParser(JSONParser):
    """JSON, refusing what the database cannot hold (NUL characters) and absurd nesting."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        try:
            if has_nul(data):
                raise ParseError("Text may not contain NUL characters.")
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
