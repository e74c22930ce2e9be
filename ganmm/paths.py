"""Where GANMM Studio keeps its runs and caches: ``GANMM_HOME``.

The environment variable ``GANMM_HOME`` names the folder; without it the
folder is ``.ganmm`` in the user's home. Nothing here creates the folder:
the code that writes there does, so that reading a missing home stays cheap.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "GANMM_HOME"
"""environment variable naming the home folder"""


def ganmm_home() -> Path:
    """The home folder: ``$GANMM_HOME`` when set (and not empty), else ``~/.ganmm``.

    Read at every call, never cached, so that tests and servers can point it
    elsewhere before they open a store.
    """
    value = os.environ.get(ENV_VAR, "").strip()
    home = Path(value).expanduser() if value else Path.home() / ".ganmm"
    return home.absolute()


def runs_db(home: Path) -> Path:
    """The SQLite file of the run store inside ``home``."""
    return Path(home) / "runs.db"


def runs_dir(home: Path) -> Path:
    """The folder holding one sub-folder of array files per run."""
    return Path(home) / "runs"
