"""Settings of a worker process started by the queue tests (tests/queues/processes.py): the
suite's settings, with the running test's database, Redis database and media folder (and,
when the test names one, the working folder where it builds exports)."""

import os
import shutil
from pathlib import Path

from config.test_settings import *  # noqa: F403
from config.test_settings import DATABASES, MEDIA_ROOT, STAGECRAFT_WORK_DIR

shutil.rmtree(MEDIA_ROOT, ignore_errors=True)  # the folder test_settings made for itself
MEDIA_ROOT = Path(os.environ["STAGECRAFT_TEST_MEDIA_ROOT"])
DATABASES["default"]["NAME"] = os.environ["STAGECRAFT_TEST_DATABASE"]
if os.environ.get("STAGECRAFT_TEST_WORK_DIR"):  # a machine's folder the test can watch
    shutil.rmtree(STAGECRAFT_WORK_DIR, ignore_errors=True)
    STAGECRAFT_WORK_DIR = Path(os.environ["STAGECRAFT_TEST_WORK_DIR"])
