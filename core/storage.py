from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    """Hashed, compressed static files; plain names for files collectstatic has not seen.

    After ``collectstatic`` (``make serve`` runs it) every ``{% static %}`` URL carries
    its content hash and WhiteNoise serves it from ``STATIC_ROOT`` with a far-future
    cache header. Before ``collectstatic`` — a first start, or a file added since —
    the manifest has no entry for the name; ``manifest_strict = False`` alone does not
    help there, because Django then tries to hash the file *in STATIC_ROOT*, finds
    nothing and raises ``ValueError`` (a 500 on every page). Such a name is returned
    as it is instead, and WhiteNoise serves it from the app folders
    (``WHITENOISE_USE_FINDERS``).
    """

    manifest_strict = False

    def stored_name(self, name: str) -> str:
        try:
            return super().stored_name(name)
        except ValueError:
            return name
