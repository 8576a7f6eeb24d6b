"""The one business-error type (HackSoft style).

Services raise ``ApplicationError`` when a request is well-formed but the domain
refuses it; views turn it into a form error or a message, the API into a 400
(or the ``status_code`` it carries), never a 500.
"""

import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
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


# An absolute path inside a message: after a space, a quote or a bracket, up to the next one.
_ABSOLUTE_PATH = re.compile(r"""(?<![\w.:/~-])/[^\s'"`()<>\[\],;]+""")


def _server_folders() -> list[str]:
    """Where this server keeps things of its own: its media, its code, its temporary files,
    its working folder and its cache of stored objects (core/objectstore.py)."""
    from django.conf import settings

    return [
        str(settings.MEDIA_ROOT),
        str(settings.BASE_DIR),
        tempfile.gettempdir(),
        str(getattr(settings, "STAGECRAFT_WORK_DIR", "") or ""),
        str(getattr(settings, "STAGECRAFT_CACHE_DIR", "") or ""),
    ]


def _inside(path: str, folder: str) -> bool:
    folder = folder.rstrip("/")
    return bool(folder) and (path == folder or path.startswith(folder + "/"))


def without_server_paths(
    text: str, *, roots: Iterable[str | Path] = (), anchors: Iterable[re.Pattern] = ()
) -> str:
    """``text`` (often an exception's) with every server path cut to what a user may read:
    what follows the last match of ``anchors`` (folders whose contents are named as the user
    gave them), else its part inside the first of ``roots`` it lies in, else its file name.

    A server path is one inside the server's own folders or whose folder exists here; other
    absolute-looking names (an HDF5 group such as /observations/qpos) are left as they are.
    Where things live on the server is nobody's business but the server's."""
    folders = sorted((str(r).rstrip("/") for r in roots if str(r)), key=len, reverse=True)
    anchors = list(anchors)
    own = _server_folders()

    def shorten(match: re.Match) -> str:
        path, tail = match.group(0), ""
        while path and path[-1] in ".:!?":  # sentence punctuation after the path
            path, tail = path[:-1], path[-1] + tail
        cut = max((m.end() for a in anchors for m in a.finditer(path)), default=0)
        if 0 < cut < len(path):
            return path[cut:] + tail
        for root in folders:
            if _inside(path, root) and len(path) > len(root) + 1:
                return path[len(root) + 1 :] + tail
        parent = Path(path).parent
        if any(_inside(path, f) for f in own) or (parent != Path("/") and parent.is_dir()):
            return (path.rstrip("/").rsplit("/", 1)[-1] or "a server folder") + tail
        return match.group(0)

    return _ABSOLUTE_PATH.sub(shorten, text)


def describe(exc: BaseException, **where: Any) -> str:
    """An unexpected exception as a user may read it: its type and message, no server paths
    (``where``: the roots and anchors of ``without_server_paths``)."""
    text = without_server_paths(str(exc), **where)
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__
