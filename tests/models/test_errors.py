"""Clear errors for directories that are not checkpoints, key and vocabulary mismatches, bad arguments."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from daedal.core.errors import AdapterError, ConfigError
from daedal.models import Dream, LLaDA
from daedal.models.testing import tiny_checkpoint


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit_weights(directory: Path, edit) -> None:
    path = directory / "model.safetensors"
    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(path), metadata={"format": "pt"})


def test_missing_directory(tmp_path):
    with pytest.raises(AdapterError) as err:
        LLaDA.from_pretrained(tmp_path / "nope")
    assert "does not exist" in str(err.value) and "nope" in str(err.value)


def test_directory_without_config(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(AdapterError) as err:
        Dream.from_pretrained(tmp_path / "empty")
    assert "config.json" in str(err.value) and "not a Dream checkpoint" in str(err.value)


def test_directory_without_weights(llada_dir, tmp_path):
    d = _copy(llada_dir, tmp_path / "c")
    (d / "model.safetensors").unlink()
    with pytest.raises(AdapterError, match=r"no \*\.safetensors"):
        LLaDA.from_pretrained(d)


@pytest.mark.parametrize(("cls", "other"), [(LLaDA, "dream_dir"), (Dream, "llada_dir")])
def test_checkpoint_of_the_other_family(cls, other, request):
    with pytest.raises(AdapterError) as err:
        cls.from_pretrained(request.getfixturevalue(other))
    msg = str(err.value)
    assert f"not a {cls.family} checkpoint" in msg and "model_type=" in msg
    assert err.value.code == "checkpoint"


def test_missing_key(llada_dir, tmp_path):
    d = _copy(llada_dir, tmp_path / "c")
    _edit_weights(d, lambda t: t.pop("model.transformer.blocks.1.up_proj.weight"))
    with pytest.raises(AdapterError) as err:
        LLaDA.from_pretrained(d)
    assert "missing keys ['model.transformer.blocks.1.up_proj.weight']" in str(err.value)


def test_unexpected_key(dream_dir, tmp_path):
    d = _copy(dream_dir, tmp_path / "c")
    _edit_weights(d, lambda t: t.__setitem__("model.layers.0.self_attn.rotary.inv_freq", torch.ones(4)))
    with pytest.raises(AdapterError) as err:
        Dream.from_pretrained(d)
    assert "unexpected keys ['model.layers.0.self_attn.rotary.inv_freq']" in str(err.value)


def test_missing_shard(tmp_path):
    d = tiny_checkpoint("llada", tmp_path / "c", max_shard_size=30_000)
    next(iter(sorted(d.glob("model-*.safetensors")))).unlink()
    with pytest.raises(AdapterError, match="not in the directory"):
        LLaDA.from_pretrained(d)


def test_shape_mismatch_between_config_and_weights(llada_dir, tmp_path):
    d = _copy(llada_dir, tmp_path / "c")
    cfg = json.loads((d / "config.json").read_text())
    cfg["mlp_hidden_size"] = 96
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(AdapterError) as err:
        LLaDA.from_pretrained(d)
    msg = str(err.value)
    # Whichever MLP tensor is read first: the stored 128-wide shape and the configured 96.
    assert "has shape" in msg and "128" in msg and "96" in msg and "config.json" in msg


def test_tokenizer_larger_than_vocabulary(dream_dir, tmp_path):
    d = _copy(dream_dir, tmp_path / "c")
    cfg = json.loads((d / "config.json").read_text())
    cfg["vocab_size"] = 300  # fewer embedding rows than tokenizer ids
    (d / "config.json").write_text(json.dumps(cfg))
    w = d / "model.safetensors"
    tensors = load_file(str(w))
    tensors["model.embed_tokens.weight"] = tensors["model.embed_tokens.weight"][:300].clone()
    tensors["lm_head.weight"] = tensors["lm_head.weight"][:300].clone()
    save_file(tensors, str(w))
    with pytest.raises(AdapterError) as err:
        Dream.from_pretrained(d)
    assert "tokenizer has" in str(err.value) and "only 300 embedding rows" in str(err.value)


def test_mask_id_disagrees_with_tokenizer(llada_dir, tmp_path):
    d = _copy(llada_dir, tmp_path / "c")
    cfg = json.loads((d / "config.json").read_text())
    cfg["mask_token_id"] = 5
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(AdapterError) as err:
        LLaDA.from_pretrained(d)
    assert "mask_token_id=5" in str(err.value) and "<|mdm_mask|>" in str(err.value)


def test_unsupported_architecture_field(llada_dir, tmp_path):
    d = _copy(llada_dir, tmp_path / "c")
    cfg = json.loads((d / "config.json").read_text())
    cfg["alibi"] = True
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match=r"alibi=True is not supported.*trust_remote_code=True"):
        LLaDA.from_pretrained(d)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"dtype": "float8"}, "dtype='float8'"),
        ({"dtype": torch.int64}, "dtype=torch.int64"),
        ({"device": "banana"}, "device='banana'"),
        ({"device": "meta"}, "device='meta'"),
        ({"precision": "fast"}, "precision='fast'"),
    ],
)
def test_bad_arguments(llada_dir, kwargs, needle):
    with pytest.raises(ConfigError) as err:
        LLaDA.from_pretrained(llada_dir, **kwargs)
    assert needle in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda(llada_dir):
    with pytest.raises(ConfigError, match="no CUDA device"):
        LLaDA.from_pretrained(llada_dir, device="cuda")


def test_hub_id_without_network(monkeypatch):
    import huggingface_hub

    def offline(**kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(AdapterError) as err:
        LLaDA.from_pretrained("GSAI-ML/LLaDA-8B-Instruct")
    assert "could not be fetched" in str(err.value) and "local directory" in str(err.value)


def test_logits_reject_rows_beyond_max_length(llada):
    tokens = torch.zeros(1, llada.max_length + 1, dtype=torch.long)
    with pytest.raises(ConfigError, match="max_length"):
        llada.logits(tokens, torch.tensor([tokens.shape[1]]))


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_unreadable_weight_file_names_the_file(llada_dir, tmp_path, damage):
    d = _copy(llada_dir, tmp_path / "c")
    path = d / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(
        {"empty": b"", "truncated": data[: len(data) // 2], "garbage": b"\x00not a safetensors file" * 64}[damage]
    )
    with pytest.raises(AdapterError) as err:
        LLaDA.from_pretrained(d)
    assert str(path) in str(err.value) and "cannot be read as safetensors" in str(err.value)
    assert err.value.code == "checkpoint"


def test_a_checkpoint_of_nan_weights_fails_at_the_first_step_naming_the_adapter(llada_dir, tmp_path):
    from daedal.core import Engine, FixedLength

    d = _copy(llada_dir, tmp_path / "c")
    _edit_weights(d, lambda t: t.update({k: torch.full_like(v, float("nan")) for k, v in t.items()}))
    engine = Engine(LLaDA.from_pretrained(d), [FixedLength(gen_length=8)])
    with pytest.raises(AdapterError, match=r"adapter LLaDA returned non-finite logits \(NaN\) at step 0 in rows \[0\]"):
        engine.generate([[5, 6, 7]])
