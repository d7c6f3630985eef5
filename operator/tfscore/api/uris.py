"""Storage URIs in one spelling, so that two of them can be compared (pure: no filesystem access, no clients).

The same location has many spellings: `s3://b/k`, `s3a://b/k/`, `s3n://b/./k`, `/data/x/../in` and `file:///data/in`. Every
comparison tfscore makes (output inside the input, quarantine beside the output, two jobs writing one output) goes through
`normalise` first; the runtime and the operator share it, so they cannot disagree on what "the same output" means.

`normalise` keeps the scheme family (s3, gs, abfs, file, http…), the authority (bucket, container@account) and the path
with `.`/`..` resolved and no trailing slash. It never touches the network or the filesystem (symlinks are not resolved).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

# Hadoop's and fsspec's spellings of one store, each mapped to one family name.
SCHEME_FAMILY = {
    "s3": "s3", "s3a": "s3", "s3n": "s3",
    "gs": "gs", "gcs": "gs",
    "abfs": "abfs", "abfss": "abfs", "az": "abfs", "adl": "abfs", "wasb": "wasb", "wasbs": "wasb",
    "file": "file", "local": "file",
    "hdfs": "hdfs", "http": "http", "https": "https",
}


@dataclass(frozen=True)
class Location:
    scheme: str      # the family: s3, gs, abfs, file, …
    authority: str   # bucket, container@account, host:port (empty for local paths)
    path: str        # absolute, normalised, no trailing slash ("/" for the root)

    def __str__(self) -> str:
        if self.scheme == "file":
            return f"file://{self.path}"
        return f"{self.scheme}://{self.authority}{self.path if self.path != '/' else ''}"

    def contains(self, other: Location) -> bool:
        """`other` is this location or lies below it."""
        if (self.scheme, self.authority) != (other.scheme, other.authority):
            return False
        return self.path == "/" or other.path == self.path or other.path.startswith(self.path + "/")

    def overlaps(self, other: Location) -> bool:
        """One of the two lies inside the other (writing one could destroy data in the other)."""
        return self.contains(other) or other.contains(self)


def normalise(uri: str, cwd: str = "/") -> Location:
    """The one spelling of `uri`; a relative local path is taken relative to `cwd`."""
    text = uri.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        if text.startswith("file:"):  # file:/x (one slash)
            scheme, rest = "file", "/" + text[len("file:"):].lstrip("/")
        else:
            scheme, rest = "file", text
    family = SCHEME_FAMILY.get(scheme.lower(), scheme.lower())
    if family == "file":
        path = rest if rest.startswith("/") else posixpath.join(cwd, rest)
        return Location("file", "", _clean(path))
    authority, slash, path = rest.partition("/")
    return Location(family, authority, _clean("/" + path if slash else "/"))


def _clean(path: str) -> str:
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):  # POSIX keeps a leading double slash; a key prefix does not
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned or "/"


def overlap(a: str, b: str, cwd: str = "/") -> bool:
    """Whether the two locations are the same or one lies inside the other."""
    return normalise(a, cwd).overlaps(normalise(b, cwd))
