"""Settings for mypy's Django plugin: the app's settings with a development key, so the
type check needs no environment."""

import os

os.environ.setdefault("SECRET_KEY", "mypy-only-not-a-secret")

from config.settings import *  # noqa: E402, F403
