"""Start-up of the ``daedal`` command: how long a user waits for the first output.

Each figure is the median (and min / max) over ``--runs`` fresh processes, timed from the
process start to its first byte on stdout:

* ``daedal generate PROMPT``: the bundled model's answer (not a terminal, so the answer
  is the first output);
* ``daedal generate --live PROMPT`` under a pseudo-terminal: the ``loading ...`` line, the
  first live frame (the initial canvas of masks, drawn before torch is imported) and the
  first frame from the model (after its first forward pass);
* ``daedal --help``, ``daedal policies``, ``daedal models`` (no torch);
* ``python -c "import torch"``: the floor every generation pays.

It also reports, in-process, which heavy modules a generation imports
(``transformers``, ``torch._dynamo``: there should be none). Run from the repository
root, on a machine as quiet as you can get (these are wall times)::

    python benchmarks/bench_startup.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import select
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROMPT = "reverse: q w e r t y u i o p"


def _daedal() -> list[str]:
    script = Path(sys.executable).parent / "daedal"
    if script.exists():
        return [str(script)]
    found = shutil.which("daedal")
    return [found] if found else [sys.executable, "-m", "daedal.models.cli"]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "HF_HUB_OFFLINE": "1"}


def first_output(argv: list[str]) -> tuple[float, float]:
    """(seconds to the first stdout byte, seconds to exit) of a fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_env())
    assert proc.stdout is not None
    proc.stdout.read(1)
    first = time.perf_counter() - start
    proc.stdout.read()
    proc.wait()
    return first, time.perf_counter() - start


def live_frames(argv: list[str]) -> tuple[float, float, float]:
    """Seconds to the 'loading' line, the first live frame and the first model frame, under a pseudo-terminal."""
    start = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, its stdout a terminal
        os.execvpe(argv[0], argv, _env())
    seen, loading, frame, model = b"", None, None, None
    while True:
        ready, _, _ = select.select([fd], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        now = time.perf_counter() - start
        if loading is None and b"loading" in seen:
            loading = now
        if frame is None and b"step " in seen:
            frame = now
        if model is None and re.search(rb"forward passes [1-9]", seen):
            model = now
    os.waitpid(pid, 0)
    os.close(fd)
    return loading or float("nan"), frame or float("nan"), model or float("nan")


def _summary(name: str, values: list[float]) -> str:
    return f"{name:<44} median {statistics.median(values):6.2f} s   (min {min(values):.2f}, max {max(values):.2f})"


def heavy_imports() -> list[str]:
    code = (
        "import sys\n"
        "from daedal.models.cli import main\n"
        f"main(['generate', {PROMPT!r}])\n"
        "print(sorted(m for m in sys.modules if m in ('transformers', 'torch._dynamo')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), check=True)
    return out.stdout.strip().splitlines()[-1:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    daedal = _daedal()
    print(f"{args.runs} runs each, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    cases = {
        f"daedal generate {PROMPT!r}: answer": [*daedal, "generate", PROMPT],
        "daedal --help": [*daedal, "--help"],
        "daedal policies": [*daedal, "policies"],
        "daedal models": [*daedal, "models"],
        "python -c 'import torch'": [sys.executable, "-c", "import torch; print(1)"],
    }
    for name, command in cases.items():
        firsts = [first_output(command)[0] for _ in range(args.runs)]
        print(_summary(name, firsts), flush=True)
    loading, frames, model = zip(
        *(live_frames([*daedal, "generate", "--live", "--delay", "0", PROMPT]) for _ in range(args.runs)), strict=True
    )
    print(_summary("daedal generate --live: 'loading ...' line", list(loading)))
    print(_summary("daedal generate --live: first live frame", list(frames)))
    print(_summary("daedal generate --live: first frame from the model", list(model)))
    print(f"heavy modules imported by a generation: {heavy_imports()[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
