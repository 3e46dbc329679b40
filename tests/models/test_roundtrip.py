"""Save / reload round trips of tiny checkpoints, single-file and sharded."""

from __future__ import annotations

import json

import pytest
import torch

from daedal.models.dream import modeling as dream_modeling
from daedal.models.llada import modeling as llada_modeling
from daedal.models.testing import build_tokenizer, tiny_model

MODULES = {"llada": llada_modeling, "dream": dream_modeling}


def _model(family: str, tmp_path, **overrides):
    specials = build_tokenizer(family, tmp_path / "tok")
    return tiny_model(family, specials, max(specials.values()) + 1, seed=3, **overrides)


@pytest.mark.parametrize("family", ["llada", "dream"])
@pytest.mark.parametrize("shard", [None, 30_000])
def test_round_trip_gives_identical_logits(family, shard, tmp_path):
    model = _model(family, tmp_path)
    mod = MODULES[family]
    out = tmp_path / "ckpt"
    mod.save_pretrained(model, out, max_shard_size=shard)
    files = sorted(p.name for p in out.glob("*.safetensors"))
    if shard is None:
        assert files == ["model.safetensors"]
        assert not (out / "model.safetensors.index.json").exists()
    else:
        assert len(files) > 1
        index = json.loads((out / "model.safetensors.index.json").read_text())
        assert set(index["weight_map"]) == set(model.state_dict())
        assert set(index["weight_map"].values()) == set(files)
    reloaded = mod.load_pretrained(out)
    assert type(reloaded) is type(model)
    assert reloaded.config.to_dict() == model.config.to_dict()
    ids = torch.randint(0, model.config.vocab_size, (2, 11), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(reloaded(ids), model(ids))


@pytest.mark.parametrize("family", ["llada", "dream"])
def test_load_converts_dtype_and_keeps_checkpoint_dtype_on_auto(family, tmp_path):
    model = _model(family, tmp_path).to(torch.bfloat16)
    mod = MODULES[family]
    mod.save_pretrained(model, tmp_path / "ckpt", max_shard_size=40_000)
    auto = mod.load_pretrained(tmp_path / "ckpt", dtype="auto")
    # Loaded straight into bf16 (the checkpoint dtype): nothing left on meta, nothing upcast.
    assert {p.dtype for p in auto.parameters()} == {torch.bfloat16}
    assert all(p.device.type == "cpu" for p in auto.parameters())
    for (k, a), b in zip(auto.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    f32 = mod.load_pretrained(tmp_path / "ckpt", dtype=torch.float32)
    assert {p.dtype for p in f32.parameters()} == {torch.float32}


def test_dream_tied_embeddings_round_trip(tmp_path):
    model = _model("dream", tmp_path, tie_word_embeddings=True)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    dream_modeling.save_pretrained(model, tmp_path / "ckpt")
    reloaded = dream_modeling.load_pretrained(tmp_path / "ckpt")
    assert reloaded.lm_head.weight is reloaded.model.embed_tokens.weight
    ids = torch.arange(12)[None]
    with torch.no_grad():
        assert torch.equal(reloaded(ids), model(ids))


def test_config_round_trip_keeps_unknown_keys():
    raw = llada_modeling.LLaDAConfig().to_dict()
    raw["auto_map"] = {"AutoModel": "modeling_llada.LLaDAModelLM"}
    raw["init_fn"] = "mitchell"
    cfg = llada_modeling.LLaDAConfig.from_dict(raw)
    assert cfg.extra == {"auto_map": raw["auto_map"], "init_fn": "mitchell"}
    assert cfg.to_dict() == raw


def test_llada_model_is_trainable():
    model = llada_modeling.LLaDAModelLM(llada_modeling.tiny_config(vocab_size=100, embedding_size=128))
    ids = torch.randint(0, 100, (2, 9))
    keep = torch.ones(2, 9, dtype=torch.bool)
    keep[1, 6:] = False
    loss = torch.nn.functional.cross_entropy(model(ids, attention_mask=keep).flatten(0, 1), ids.flatten())
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.model.transformer.blocks[0].q_proj.weight.grad.abs().sum() > 0


def test_auto_dtype_without_torch_dtype_in_config_uses_stored_dtype(tmp_path):
    model = _model("llada", tmp_path).to(torch.bfloat16)
    out = llada_modeling.save_pretrained(model, tmp_path / "ckpt")
    cfg = json.loads((out / "config.json").read_text())
    del cfg["torch_dtype"]
    (out / "config.json").write_text(json.dumps(cfg))
    reloaded = llada_modeling.load_pretrained(out, dtype="auto")
    assert reloaded.dtype == torch.bfloat16


@pytest.mark.parametrize("overrides", [{"weight_tying": True}, {"n_kv_heads": 2}])
def test_llada_variants_round_trip(overrides, tmp_path):
    model = _model("llada", tmp_path, **overrides)
    keys = set(model.state_dict())
    assert ("model.transformer.ff_out.weight" in keys) is not overrides.get("weight_tying", False)
    if "n_kv_heads" in overrides:  # GQA: 2 KV heads of dim 16
        assert model.model.transformer.blocks[0].k_proj.weight.shape == (32, 64)
    llada_modeling.save_pretrained(model, tmp_path / "ckpt")
    reloaded = llada_modeling.load_pretrained(tmp_path / "ckpt")
    ids = torch.arange(10)[None]
    with torch.no_grad():
        out = reloaded(ids)
        assert out.shape == (1, 10, model.config.padded_vocab_size)
        assert torch.equal(out, model(ids))
