"""The one business-error type (HackSoft style).

Services raise ``ApplicationError`` when a request is well-formed but the domain
refuses it; views turn it into a form error or a message, the API into a 400
(or the ``status_code`` it carries), never a 500.
"""

from typing import Any


class ApplicationError(Exception):
    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, extra: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}

    def body(self) -> dict:
        """The JSON body the API answers with."""
        body: dict = {self.field: [self.message]} if self.field else {"detail": self.message}
        body.update(self.extra)
        return body


class Conflict(ApplicationError):
    """A stale edit or a duplicate: the API answers 409."""

    status_code = 409


class InvalidTransition(ApplicationError):
    """A state change the current state does not allow."""

    status_code = 409
