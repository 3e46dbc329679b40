"""The full-size configs build (on the meta device) exactly the released checkpoints' tensors.

Expected names and shapes are the tables of reference/models.md §1.2 and §2.2.
"""

from __future__ import annotations

import torch

from daedal.models.dream.modeling import DreamConfig, DreamModel
from daedal.models.llada.modeling import LLaDAConfig, LLaDAModelLM


def _shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_llada_8b_parameter_names_and_shapes():
    with torch.device("meta"):
        model = LLaDAModelLM(LLaDAConfig())
    expected = {
        "model.transformer.wte.weight": (126464, 4096),
        "model.transformer.ln_f.weight": (4096,),
        "model.transformer.ff_out.weight": (126464, 4096),
    }
    for i in range(32):
        p = f"model.transformer.blocks.{i}."
        expected |= {
            p + "attn_norm.weight": (4096,),
            p + "q_proj.weight": (4096, 4096),
            p + "k_proj.weight": (4096, 4096),
            p + "v_proj.weight": (4096, 4096),
            p + "attn_out.weight": (4096, 4096),
            p + "ff_norm.weight": (4096,),
            p + "ff_proj.weight": (12288, 4096),
            p + "up_proj.weight": (12288, 4096),
            p + "ff_out.weight": (4096, 12288),
        }
    assert _shapes(model) == expected
    assert sum(p.numel() for p in model.parameters()) == 8_015_581_184
    assert list(model.buffers()) == []  # RoPE tables are computed, never stored
    assert all(p.is_meta for p in model.parameters())


def test_dream_7b_parameter_names_and_shapes():
    with torch.device("meta"):
        model = DreamModel(DreamConfig())
    expected = {
        "model.embed_tokens.weight": (152064, 3584),
        "model.norm.weight": (3584,),
        "lm_head.weight": (152064, 3584),
    }
    for i in range(28):
        p = f"model.layers.{i}."
        expected |= {
            p + "input_layernorm.weight": (3584,),
            p + "self_attn.q_proj.weight": (3584, 3584),
            p + "self_attn.q_proj.bias": (3584,),
            p + "self_attn.k_proj.weight": (512, 3584),
            p + "self_attn.k_proj.bias": (512,),
            p + "self_attn.v_proj.weight": (512, 3584),
            p + "self_attn.v_proj.bias": (512,),
            p + "self_attn.o_proj.weight": (3584, 3584),
            p + "post_attention_layernorm.weight": (3584,),
            p + "mlp.gate_proj.weight": (18944, 3584),
            p + "mlp.up_proj.weight": (18944, 3584),
            p + "mlp.down_proj.weight": (3584, 18944),
        }
    assert _shapes(model) == expected
    n = sum(p.numel() for p in model.parameters())
    assert 7.6e9 < n < 7.65e9
    assert list(model.buffers()) == []


def test_default_configs_match_released_config_json():
    llada = LLaDAConfig().to_dict()
    assert llada["model_type"] == "llada" and llada["architectures"] == ["LLaDAModelLM"]
    assert (llada["mask_token_id"], llada["eos_token_id"], llada["pad_token_id"]) == (126336, 126081, 126081)
    assert (llada["rope_theta"], llada["rms_norm_eps"], llada["max_sequence_length"]) == (500000.0, 1e-5, 4096)
    dream = DreamConfig().to_dict()
    assert dream["model_type"] == "Dream" and dream["architectures"] == ["DreamModel"]
    assert (dream["mask_token_id"], dream["eos_token_id"], dream["pad_token_id"]) == (151666, 151643, 151643)
    assert (dream["rope_theta"], dream["rms_norm_eps"], dream["num_key_value_heads"]) == (1e6, 1e-6, 4)
    assert DreamConfig().attn_head_dim == 128 and LLaDAConfig().head_dim == 128
