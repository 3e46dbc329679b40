"""Discovery: entry points resolve to the adapters; importing daedal.models stays cheap."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

from daedal.models import Dream, LLaDA


def test_adapters_are_registered():
    eps = {ep.name: ep for ep in entry_points(group="daedal.adapters")}
    assert eps["llada"].value == "daedal.models.llada:LLaDA"
    assert eps["dream"].value == "daedal.models.dream:Dream"
    assert eps["llada"].load() is LLaDA
    assert eps["dream"].load() is Dream


def test_importing_the_package_does_not_import_transformers():
    code = (
        "import sys, daedal.models, daedal.models.llada.modeling, daedal.models.dream.modeling\n"
        "heavy = [m for m in ('transformers', 'daedal.models.llada.adapter', 'daedal.models.dream.adapter') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert daedal.models.LLaDA.__name__ == 'LLaDA'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_listing_the_package_does_not_import_torch():
    code = "import sys, daedal.models\nassert 'torch' not in sys.modules\nassert 'LLaDA' in dir(daedal.models)\n"
    subprocess.run([sys.executable, "-c", code], check=True)
