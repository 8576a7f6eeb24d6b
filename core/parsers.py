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
