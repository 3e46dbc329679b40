"""Check the built distributions in a folder: what every release must hold.

    python scripts/check_dists.py dist/

* one wheel and one sdist per package, all at the same version (lockstep);
* no ``daedal/__init__.py`` in any wheel (``daedal`` is an implicit namespace package);
* each wheel holds its ``daedal/<name>/__init__.py`` and its licence, and its metadata
  has a licence, a readme and project URLs;
* the daedal-models wheel holds every file of the bundled tiny model that the source tree
  has, and defines the ``daedal`` console script;
* each sdist holds pyproject.toml, README.md and LICENSE.
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["daedal-core", "daedal-policies", "daedal-models", "daedal-eval"]
BUNDLED = ROOT / "packages/daedal-models/src/daedal/models/bundled"


def check(dist: Path) -> list[str]:
    problems: list[str] = []
    versions: dict[str, str] = {}
    for package in PACKAGES:
        module = package.replace("-", "_")
        short = package.removeprefix("daedal-")
        wheels = sorted(dist.glob(f"{module}-*.whl"))
        sdists = sorted(dist.glob(f"{module}-*.tar.gz"))
        if len(wheels) != 1 or len(sdists) != 1:
            problems.append(
                f"{package}: expected one wheel and one sdist in {dist}, found {len(wheels)} and {len(sdists)}"
            )
            continue
        with zipfile.ZipFile(wheels[0]) as whl:
            names = set(whl.namelist())
            if "daedal/__init__.py" in names:
                problems.append(f"{wheels[0].name}: holds daedal/__init__.py; daedal must stay a namespace package")
            if f"daedal/{short}/__init__.py" not in names:
                problems.append(f"{wheels[0].name}: has no daedal/{short}/__init__.py")
            meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
            meta = Parser().parsestr(whl.read(meta_name).decode())
            entry_points = next((whl.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt")), "")
            if not any(n.endswith(("LICENSE", "LICENSE.txt")) for n in names if ".dist-info/" in n):
                problems.append(f"{wheels[0].name}: no licence file in the dist-info")
        versions[package] = meta["Version"]
        for field in ("License-Expression", "Summary", "Requires-Python", "Description-Content-Type"):
            if not meta.get(field) and not (field == "License-Expression" and meta.get("License")):
                problems.append(f"{wheels[0].name}: metadata has no {field}")
        if not meta.get_all("Project-URL"):
            problems.append(f"{wheels[0].name}: metadata has no Project-URL")
        if len(meta.get_payload() or "") < 200:
            problems.append(f"{wheels[0].name}: the long description (README) is missing or a stub")
        if package == "daedal-models":
            if "daedal = " not in entry_points:
                problems.append(f"{wheels[0].name}: no `daedal` console script in entry_points.txt")
            shipped = [p for p in BUNDLED.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
            for path in shipped:
                inside = "daedal/models/bundled/" + path.relative_to(BUNDLED).as_posix()
                if inside not in names:
                    problems.append(f"{wheels[0].name}: the bundled file {inside} is missing")
        with tarfile.open(sdists[0]) as sdist:
            members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
            for required in ("pyproject.toml", "README.md", "LICENSE"):
                if required not in members:
                    problems.append(f"{sdists[0].name}: has no {required}")
    if len(set(versions.values())) > 1:
        problems.append(f"versions are not in lockstep: {versions}")
    return problems


def main() -> int:
    dist = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "dist")
    problems = check(dist)
    for problem in problems:
        print("FAIL", problem)
    if not problems:
        print(
            f"ok: {len(PACKAGES)} wheels and sdists in {dist} at one version, namespace intact, bundled files shipped"
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
