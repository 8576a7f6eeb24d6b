"""What a bucket's objects hold: the episodes an import can take, each a unit of objects.

A pure function of the listing (no network, no database). A LeRobot dataset is the folder of
a ``meta/info.json``, a Zarr replay buffer a ``*.zarr`` folder (or one with
``meta/episode_ends``) or a ``.zarr.zip``; an HDF5 file (ALOHA episodes or a robomimic file)
and an image are units of their own. Anything else (a loose ``.mp4``, notes, hidden files) is
left out and counted as ignored: the importers could not read it alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from .backends import StoredObject

HDF5_SUFFIXES = (".hdf5", ".h5")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass
class Episode:
    """One importable unit: ``key`` is a file's key, or a folder's with a trailing slash."""

    key: str
    kind: str  # "lerobot", "zarr", "hdf5" or "images"
    objects: list[StoredObject] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(o.size for o in self.objects)

    @property
    def etag(self) -> str:
        """The object's ETag, or a digest of a folder's keys and ETags."""
        if len(self.objects) == 1 and not self.key.endswith("/"):
            return self.objects[0].etag
        digest = hashlib.sha256()
        for o in sorted(self.objects, key=lambda o: o.key):
            digest.update(f"{o.key}\0{o.etag}\n".encode())
        return digest.hexdigest()

    def is_new(self, seen: dict[str, str]) -> bool:
        """True when any of its objects was not imported before, or changed since."""
        return any(seen.get(o.key) != o.etag for o in self.objects)


@dataclass
class Listing:
    episodes: list[Episode]
    ignored: int  # objects no importer takes


def _root_of(parts: tuple[str, ...]) -> tuple[str, int] | None:
    """The kind and depth of a folder unit that a key's path parts place it in."""
    for depth, part in enumerate(parts[:-1]):
        if part.lower().endswith(".zarr"):
            return "zarr", depth + 1
    return None


def _plain(relative: str) -> bool:
    """A relative path of named parts only: no empty, ``.`` or ``..`` part."""
    return all(p not in ("", ".", "..") for p in relative.split("/"))


def episodes_in(objects: Iterable[StoredObject], prefix: str = "") -> Listing:
    """Group the objects under ``prefix`` into episodes, in key order."""
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    under = [o for o in objects if o.key.startswith(base) and not o.key.endswith("/")]
    # A key is the customer's text: one that is not a plain relative path under the prefix
    # (``a//b``, ``./``, ``../``) would name a place outside the sync's working folder once
    # joined to it (``//`` an absolute path). It is no episode's, counted as ignored.
    items = [o for o in under if _plain(o.key[len(base) :])]

    def parts(o: StoredObject) -> tuple[str, ...]:
        return tuple(o.key[len(base) :].split("/"))

    # Folder units first: LeRobot datasets (meta/info.json), Zarr stores.
    roots: dict[tuple[str, ...], str] = {}
    for o in items:
        p = parts(o)
        if p[-2:] == ("meta", "info.json"):
            roots[p[:-2]] = "lerobot"
        elif len(p) >= 3 and p[-3:-1] == ("meta", "episode_ends"):
            roots.setdefault(p[:-3], "zarr")
        else:
            found = _root_of(p)
            if found:
                roots.setdefault(p[: found[1]], found[0])
    # A LeRobot dataset may hold anything (its videos, a .zarr of its own): outermost wins.
    outer = {
        r: kind for r, kind in roots.items() if not any(r[: len(o)] == o and r != o for o in roots)
    }
    units: dict[str, Episode] = {}
    ignored = len(under) - len(items)
    for o in items:
        p = parts(o)
        root = next((r for r in outer if p[: len(r)] == r and len(p) > len(r)), None)
        if root is not None:
            key = base + "".join(f"{x}/" for x in root)
            units.setdefault(key, Episode(key=key, kind=outer[root])).objects.append(o)
            continue
        if any(x.startswith(".") for x in p):
            ignored += 1
            continue
        name = p[-1].lower()
        if name.endswith(HDF5_SUFFIXES):
            kind = "hdf5"
        elif name.endswith(".zarr.zip"):
            kind = "zarr"
        elif name.endswith(IMAGE_SUFFIXES):
            kind = "images"
        else:
            ignored += 1
            continue
        units[o.key] = Episode(key=o.key, kind=kind, objects=[o])
    return Listing(episodes=sorted(units.values(), key=lambda e: e.key), ignored=ignored)
