"""Uploaded files, kept in ``GANMM_HOME/uploads`` so that runs can load them again.

The browser can give data only by uploading it: it never names a path on the
server. An upload is kept under its content hash, in a folder of its own,
with a name made safe (letters, digits, ``.``, ``_``, ``-``), so that neither
the name nor the content can reach outside ``GANMM_HOME/uploads``.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path, PurePath

from . import loaders
from .errors import DataError
from .paths import ganmm_home

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
NAME_MAX = 100
"""longest file name kept, in characters"""


def safe_filename(filename: str) -> str:
    """The last part of ``filename`` with anything but letters, digits, ``.``, ``_``
    and ``-`` replaced by ``_``; refused (DataError) when its type is unknown."""
    base = PurePath(str(filename).replace("\\", "/")).name
    clean = _UNSAFE.sub("_", base)[-NAME_MAX:].lstrip(".")  # cut first: no leading dot after
    if not clean.strip("._-"):
        raise DataError(f"the file name {filename!r} has no usable characters; rename the file")
    loaders.file_format(clean)  # an unknown type is refused here, with the accepted types
    return clean


def uploads_dir(home: Path | None = None) -> Path:
    """``GANMM_HOME/uploads``."""
    return Path(home if home is not None else ganmm_home()) / "uploads"


def save_upload(filename: str, content: bytes, home: Path | None = None) -> Path:
    """Keep an uploaded file; returns its path. The same bytes under the same name
    give the same path, so uploading a file twice stores it once."""
    name = safe_filename(filename)
    digest = hashlib.sha256(content).hexdigest()[:24]
    folder = uploads_dir(home) / digest
    path = folder / name
    if path.is_file() and path.stat().st_size == len(content):
        return path
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def is_upload(path: str | os.PathLike, home: Path | None = None) -> bool:
    """True when ``path`` is a file kept by :func:`save_upload` (inside
    ``GANMM_HOME/uploads``, links resolved)."""
    root = uploads_dir(home).resolve()
    try:
        resolved = Path(path).resolve()
    except (OSError, ValueError):
        return False
    return resolved.is_relative_to(root) and resolved != root and resolved.is_file()
