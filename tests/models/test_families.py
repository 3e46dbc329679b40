"""Model families are data: adapters declare the ``model_type`` values they load.

A third family, installed by a test-only distribution (a ``dist-info`` with an entry
point, written to a temporary directory on ``sys.path``), is found by the command line
from a checkpoint's ``config.json`` alone.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from daedal.core import registry
from daedal.models import Dream, HFAdapter, LLaDA

TOY_MODULE = '''
"""A test-only model family: a seeded fake model behind from_pretrained."""

import json
from pathlib import Path

from daedal.core.testing import FakeAdapter

LOADED = []


class ToyFamily:
    model_types = ("ToyFam",)

    @classmethod
    def from_pretrained(cls, path, *, dtype="auto", device=None, **kwargs):
        LOADED.append(str(path))
        config = json.loads((Path(path) / "config.json").read_text())
        return FakeAdapter(vocab_size=config["vocab_size"], seed=5, eos_bias=1.0)
'''


@pytest.fixture
def toy_family(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Install the ``toyfam`` distribution (entry point ``toy`` in ``daedal.adapters``) for one test."""
    site = tmp_path / "site"
    (site / "toyfam_pkg").mkdir(parents=True)
    (site / "toyfam_pkg" / "__init__.py").write_text(TOY_MODULE)
    info = site / "toyfam-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyfam\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[daedal.adapters]\ntoy = toyfam_pkg:ToyFamily\n")
    monkeypatch.syspath_prepend(str(site))
    yield
    sys.modules.pop("toyfam_pkg", None)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Call ``daedal.models.cli.main`` in-process; returns (exit code, stdout, stderr)."""
    from daedal.models.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _checkpoint(directory: Path, model_type: str) -> Path:
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"model_type": model_type, "vocab_size": 40}))
    return directory


def test_the_shipped_adapters_declare_their_model_types() -> None:
    assert LLaDA.model_types == ("llada",) and Dream.model_types == ("Dream",)
    assert issubclass(LLaDA, HFAdapter) and issubclass(Dream, HFAdapter)
    assert registry.adapter_for_model_type("llada") == "llada"
    assert registry.adapter_for_model_type("DREAM") == "dream", "model_type is compared without case"
    assert registry.adapter_for_model_type("gpt2") is None
    assert registry.adapter_for_model_type("") is None


def test_a_third_family_is_found_by_its_model_type(toy_family) -> None:
    assert "toy" in registry.available("adapters"), "the tmp dist-info entry point is not visible"
    assert registry.adapter_for_model_type("toyfam") == "toy"
    assert registry.declared_model_types()["toy"] == ("ToyFam",)


def test_the_cli_loads_a_third_family_from_config_json(toy_family, cli, tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "ckpt", "toyfam")
    code, out, err = cli(
        "generate",
        "--model",
        str(ckpt),
        "--policy",
        "llada",
        "--json",
        "--set",
        "gen_length=8",
        "--set",
        "steps=8",
        "--set",
        "block_length=8",
        "5 6 7",
    )
    assert code == 0, err
    import toyfam_pkg

    assert toyfam_pkg.LOADED == [str(ckpt)], "the CLI did not load the checkpoint through the toy family"
    data = json.loads(out)
    assert len(data["results"][0]["tokens"]) == 8


def test_the_cli_names_the_declared_types_for_an_unknown_model_type(cli, tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "ckpt", "gpt2")
    code, _, err = cli("generate", "--model", str(ckpt), "x")
    assert code == 3, err
    assert "no installed adapter loads model_type 'gpt2'" in err and "llada: ['llada']" in err and "--adapter" in err


def test_two_adapters_claiming_one_model_type_are_refused(toy_family, monkeypatch: pytest.MonkeyPatch) -> None:
    import toyfam_pkg

    monkeypatch.setattr(toyfam_pkg.ToyFamily, "model_types", ("llada",))
    with pytest.raises(registry.PluginError, match=r"\['llada', 'toy'\] all declare model_type 'llada'"):
        registry.adapter_for_model_type("llada")


def test_the_eval_runner_reads_the_declared_model_types(toy_family, tmp_path: Path) -> None:
    pytest.importorskip("daedal.eval")
    from daedal.eval.build import build_adapter

    ckpt = _checkpoint(tmp_path / "ckpt", "toyfam")
    adapter = build_adapter(str(ckpt))
    assert adapter.vocab_size == 40 and type(adapter).__name__ == "FakeAdapter"


def test_a_wrong_family_error_names_the_adapter_that_declares_the_type(tmp_path: Path) -> None:
    from daedal.core.errors import AdapterError
    from daedal.models.llada import modeling

    with pytest.raises(AdapterError, match="The installed adapter 'dream' declares that model_type"):
        modeling.check_config({"model_type": "Dream"}, path=tmp_path)


def test_the_length_policy_reads_shifted_not_a_family_name() -> None:
    from daedal.core import Engine
    from daedal.core.testing import FakeAdapter
    from daedal.policies import EosConfidenceLength, length

    source = Path(length.__file__).read_text(encoding="utf-8")
    assert "Dream" not in source and "family" not in source, "the length policy tests a family name"

    class Shifted(FakeAdapter):
        shifted = True

    stage1 = EosConfidenceLength(initial_gen_length=8, max_gen_length=16, eos_check_tokens=4)
    plain = Engine(FakeAdapter(vocab_size=40, eos_bias=2.0), [stage1]).generate([[5, 6]])
    shifted = Engine(Shifted(vocab_size=40, eos_bias=2.0), [stage1]).generate([[5, 6]])
    assert "reference_verifiable" not in plain.info
    assert shifted.info["reference_verifiable"] is False
