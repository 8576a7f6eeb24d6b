"""Shared API pieces: pagination and JSON errors that never leak a 500 for bad input."""

import logging
from collections.abc import Mapping

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.exceptions import ApplicationError

logger = logging.getLogger(__name__)


class PatchSerializer(serializers.Serializer):
    """The body of a PATCH: only the fields declared on the subclass may be sent.

    A field the resource shows but this endpoint does not change (``id``, ``status``,
    ``created_at``…) is refused with 400 naming it, and so is an unknown field (usually a
    typo): answering 200 while ignoring them would tell the client its change was made.
    ``Meta.resource`` is the serializer of what the endpoint answers (its fields are the
    read-only ones); ``Meta.read_only_hints`` may say how such a field does change.
    """

    class Meta:
        resource: type[serializers.Serializer] | None = None
        read_only_hints: dict[str, str] = {}

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            refused = {key: [self._refusal(str(key))] for key in data if key not in self.fields}
            if refused:
                raise serializers.ValidationError(refused)
        return super().to_internal_value(data)

    def _refusal(self, key: str) -> str:
        resource = getattr(self.Meta, "resource", None)
        writable = f"Writable here: {', '.join(self.fields) or 'nothing'}."
        if resource is not None and key in resource().fields:
            hint = getattr(self.Meta, "read_only_hints", {}).get(key)
            return f"This field is read-only{f': {hint}' if hint else ''}. {writable}"
        return f"Unknown field. {writable}"


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


def application_error_response(exc: ApplicationError) -> Response:
    return Response(exc.body(), status=exc.status_code)


def exception_handler(exc, context):
    """DRF's handler, plus our ApplicationError and Django's ValidationError as JSON."""
    if isinstance(exc, ApplicationError):
        return application_error_response(exc)
    if isinstance(exc, ValidationError):
        if hasattr(exc, "message_dict"):
            return Response(exc.message_dict, status=status.HTTP_400_BAD_REQUEST)
        return Response({"detail": exc.messages}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    return drf_exception_handler(exc, context)
