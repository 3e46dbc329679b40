"""Contributor sessions: ``nox`` runs lint, typecheck, tests and docs; the rest are opt-in.

    nox                          # lint, typecheck, tests, docs
    nox -s isolated              # each package alone, with only its declared dependencies
    nox -s "isolated(package='daedal-core')"
    nox -s tests_torch           # opt-in: every package's tests on the newest and the oldest torch
    nox -s "tests_torch(torch2.4.1)"   # the oldest supported torch leg only
    nox -s build                 # wheels and sdists of the four packages into dist/

Every session that installs torch pins it first (``torch==2.13.0``, the project's local CPU
build) and keeps the pin as a pip constraint for everything installed after, so pip never
replaces it with a CUDA build. Sessions use the standard-library ``venv`` with pip: pip
finds the local torch file where uv does not look.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "typecheck", "tests", "docs"]
nox.options.reuse_existing_virtualenvs = False

ROOT = Path(__file__).parent
PACKAGES = ["daedal-core", "daedal-policies", "daedal-models", "daedal-eval"]
#: The torch every default session uses (the project's local CPU build).
TORCH = "2.13.0"
#: The oldest torch the packages support (``torch>=2.4`` in each pyproject): tested, not assumed.
#: Plain PyPI serves it with its CUDA packages (about 5 GB); it runs on the CPU all the same.
TORCH_OLDEST = "2.4.1"
#: The opt-in matrix: the newest and the oldest supported torch.
TORCH_MATRIX = [TORCH, TORCH_OLDEST]
#: Test directories of each package (``isolated`` runs these with only that package installed).
TEST_DIRS = {
    "daedal-core": ["tests/core"],
    "daedal-policies": ["tests/policies"],
    "daedal-models": ["tests/models", "tests/bundled", "tests/cli"],
    "daedal-eval": ["tests/eval"],
}
TEST_TOOLS = ["pytest>=8", "hypothesis>=6.100"]
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def _torch_requirement(version: str) -> str:
    return f"torch=={version}" if version.count(".") == 2 else f"torch~={version}.0"


def _pin_torch(session: nox.Session, version: str = TORCH) -> None:
    """Install torch first and constrain every later install to it."""
    requirement = _torch_requirement(version)
    index = os.environ.get("TORCH_INDEX_URL")  # e.g. a CPU-only wheel index for the matrix
    session.install(requirement, *(["--extra-index-url", index] if index else []))
    constraints = Path(session.create_tmp()) / "torch-constraint.txt"
    # Read the version from the metadata: importing torch would print warnings into the output.
    query = "import importlib.metadata as m; print(m.version('torch').split('+')[0])"
    installed = str(session.run("python", "-c", query, silent=True)).strip().splitlines()[-1]
    constraints.write_text(f"torch=={installed}\n", encoding="utf-8")
    session.env["PIP_CONSTRAINT"] = str(constraints)


def _project(package: str) -> dict:
    return nox.project.load_toml(ROOT / "packages" / package / "pyproject.toml")["project"]


def _local_dependencies(package: str) -> list[str]:
    """The daedal-* distributions ``package`` declares, transitively, in install order."""
    order: list[str] = []

    def visit(name: str) -> None:
        for requirement in _project(name).get("dependencies", []):
            dep = requirement.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip()
            if dep in PACKAGES and dep not in order:
                visit(dep)
                order.append(dep)

    visit(package)
    return order


@nox.session
def tests(session: nox.Session) -> None:
    """The README's test command in a fresh environment (``pip install -r requirements.txt``)."""
    _pin_torch(session)
    session.install("-r", "requirements.txt")
    session.run("python", "-m", "pytest", *session.posargs, env=OFFLINE)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole repository (configuration in the root pyproject.toml)."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", *(session.posargs or ["."]))


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over the core (and any package path given as an argument)."""
    _pin_torch(session)
    session.install("mypy>=1.11", "-e", "packages/daedal-core", *TEST_TOOLS)
    session.run("mypy", *(session.posargs or ["packages/daedal-core/src/daedal/core"]))


@nox.session
def docs(session: nox.Session) -> None:
    """``mkdocs build --strict``; the API pages are read from the sources, nothing is imported."""
    session.install("-r", "requirements-docs.txt")
    session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
@nox.parametrize("package", PACKAGES)
def isolated(session: nox.Session, package: str) -> None:
    """One package with only its declared dependencies (built, not editable), then its tests.

    Catches imports of a sibling package that is not declared, and files missing from the
    wheel. Sibling packages it does declare are installed from this checkout.
    """
    _pin_torch(session)
    local = [f"packages/{dep}" for dep in (*_local_dependencies(package), package)]
    extras = "[testing]" if "testing" in _project(package).get("optional-dependencies", {}) else ""
    session.install(*local[:-1], f"{local[-1]}{extras}", *TEST_TOOLS)
    dirs = [d for d in TEST_DIRS[package] if any((ROOT / d).glob("test_*.py"))]
    if not dirs:
        session.skip(f"{package} has no tests yet under {TEST_DIRS[package]}")
    session.run("python", "-m", "pytest", *dirs, *(session.posargs or ["-m", "not slow and not gpu"]), env=OFFLINE)


@nox.session(tags=["matrix"], default=False)
@nox.parametrize("torch", TORCH_MATRIX, ids=[f"torch{v}" for v in TORCH_MATRIX])
def tests_torch(session: nox.Session, torch: str) -> None:
    """Opt-in: every package's tests (``TEST_DIRS``) on the newest and on the oldest supported
    torch. The oldest comes from the package index with its CUDA packages (set
    TORCH_INDEX_URL to a CPU wheel index to download less); it computes on the CPU."""
    _pin_torch(session, torch)
    extras = {p: "[testing]" if "testing" in _project(p).get("optional-dependencies", {}) else "" for p in PACKAGES}
    session.install(*(arg for p in PACKAGES for arg in ("-e", f"packages/{p}{extras[p]}")), *TEST_TOOLS)
    dirs = [d for package in PACKAGES for d in TEST_DIRS[package]]
    session.run("python", "-c", "import torch; print('torch', torch.__version__, torch.ones(2, 2).sum().item())")
    session.run("python", "-m", "pytest", *dirs, *(session.posargs or ["-m", "not slow and not gpu"]), env=OFFLINE)


@nox.session(default=False)
def build(session: nox.Session) -> None:
    """Wheels and sdists of every package into dist/, then check what the wheels hold."""
    session.install("build>=1.2")
    dist = ROOT / "dist"
    for package in PACKAGES:
        session.run("python", "-m", "build", "--outdir", str(dist), f"packages/{package}")
    session.run("python", "scripts/check_dists.py", str(dist))
