"""One runner per run directory: an ``fcntl`` lock plus the holder's pid and host in the lock file.

Two runners appending to one ``samples.jsonl`` would interleave duplicate records and
race on the manifest. :class:`RunLock` takes an exclusive, non-blocking ``flock`` on
``<dir>/lock.rank<r>`` (each rank of a data-parallel run holds its own) and writes who
holds it; a second runner gets a :class:`~daedal.core.ConfigError` naming the holder. The
kernel drops the lock when the holder exits, even when it is killed, so a stale lock file
never blocks a resume.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import socket
from pathlib import Path
from typing import IO, Any

from daedal.core.errors import ConfigError

__all__ = ["RunLock"]


class RunLock:
    """Exclusive lock of a run directory for one rank, held from ``__enter__`` to ``__exit__``.

    Args:
        directory: The run directory.
        rank: This process's rank (each rank locks its own file).
    """

    def __init__(self, directory: str | os.PathLike[str], rank: int = 0) -> None:
        self.path = Path(directory) / f"lock.rank{rank}"
        self._file: IO[str] | None = None

    def __enter__(self) -> RunLock:
        f = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "an unknown process"
            f.close()
            raise ConfigError(
                f"run directory {str(self.path.parent)!r} is in use by another runner ({holder}); "
                "wait for it to finish, stop it, or pick another --output"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps(self.holder()) + "\n")
        f.flush()
        self._file = f
        return self

    @staticmethod
    def holder() -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
