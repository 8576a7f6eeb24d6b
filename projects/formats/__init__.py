"""Dataset formats: each module inspects files into samples and reads frames and series back.

An importer is a pure function of files on disk (no database): ``inspect()``
returns one ``SampleSpec`` per episode or image, or raises ``DataError`` naming
the file and the problem. The import service (projects.services_data) copies
files, calls it from an RQ job and stores the result all-or-nothing.
"""

from .base import DataError, DatasetFormatReader, SampleSpec, get_format

__all__ = ["DataError", "DatasetFormatReader", "SampleSpec", "get_format"]
