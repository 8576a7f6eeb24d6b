"""Settings of a worker process started by the queue tests (tests/queues/processes.py): the
suite's settings, with the running test's database, Redis database and media folder."""

import os
import shutil
from pathlib import Path

from config.test_settings import *  # noqa: F403
from config.test_settings import DATABASES, MEDIA_ROOT

shutil.rmtree(MEDIA_ROOT, ignore_errors=True)  # the folder test_settings made for itself
MEDIA_ROOT = Path(os.environ["STAGECRAFT_TEST_MEDIA_ROOT"])
DATABASES["default"]["NAME"] = os.environ["STAGECRAFT_TEST_DATABASE"]
