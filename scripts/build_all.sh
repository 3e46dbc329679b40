#!/usr/bin/env bash
# Build a wheel and an sdist of every package into dist/ and check them (scripts/check_dists.py).
# Same as `nox -s build`, for machines without nox. Needs `pip install build`.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf dist
for package in daedal-core daedal-policies daedal-models daedal-eval; do
    python -m build --outdir dist "packages/$package"
done
python scripts/check_dists.py dist
