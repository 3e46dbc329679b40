"""The trust_remote_code path: a checkpoint whose auto_map points at a modeling file written here."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
import torch
from safetensors.torch import save_file

from daedal.core.adapter import ModelAdapter
from daedal.core.errors import AdapterError
from daedal.models import Dream, LLaDA
from daedal.models._remote import RemoteModel
from daedal.models.testing import build_tokenizer

MODELING = """
import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput


class ToyConfig(PretrainedConfig):
    model_type = "toy"

    def __init__(self, vocab_size=64, hidden=16, mask_token_id=0, max_sequence_length=128, **kwargs):
        self.vocab_size = vocab_size
        self.hidden = hidden
        self.mask_token_id = mask_token_id
        self.max_sequence_length = max_sequence_length
        super().__init__(**kwargs)


class ToyModel(PreTrainedModel):
    config_class = ToyConfig
    base_model_prefix = "toy"

    def __init__(self, config):
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab_size, config.hidden)
        self.mix = nn.Linear(config.hidden, config.hidden)
        self.head = nn.Linear(config.hidden, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.embed

    def get_output_embeddings(self):
        return self.head

    def forward(self, input_ids, attention_mask=None, position_ids=None, **kwargs):
        h = self.embed(input_ids)
        if attention_mask is None:
            keep = torch.ones(input_ids.shape, dtype=torch.bool, device=input_ids.device)
        elif attention_mask.dim() == 4:  # Dream style [B, 1, T, T]
            keep = attention_mask[:, 0, 0, :].bool()
        else:
            keep = attention_mask.bool()
        # Bidirectional: every slot sees the mean of the attended keys.
        ctx = (h * keep[..., None]).sum(1) / keep.sum(1, keepdim=True)
        return MaskedLMOutput(logits=self.head(h + self.mix(ctx)[:, None]))
"""


def _transformers_accepts_this_torch() -> bool:
    from transformers.utils import is_torch_available

    return is_torch_available()


#: transformers 5 refuses torch < 2.6: on the oldest supported torch (2.4.1, the nox matrix's
#: oldest leg) only the native path works, and load_remote says so (tested below).
needs_hf_torch = pytest.mark.skipif(
    not _transformers_accepts_this_torch(),
    reason=f"the installed transformers does not accept torch {torch.__version__} (transformers 5 needs torch >= 2.6)",
)


def _write(tmp_path, family: str):
    d = tmp_path / f"remote-{family}"
    specials = build_tokenizer(family, d)
    (d / "modeling_toy.py").write_text(MODELING)
    mask = specials["<|mdm_mask|>" if family == "llada" else "<|mask|>"]
    eos = specials["<|endoftext|>"]
    config = {
        "model_type": "llada" if family == "llada" else "Dream",
        "auto_map": {"AutoConfig": "modeling_toy.ToyConfig", "AutoModel": "modeling_toy.ToyModel"},
        "vocab_size": 384,
        "hidden": 16,
        "mask_token_id": mask,
        "eos_token_id": eos,
        "pad_token_id": eos,
        "max_sequence_length": 128,
        "max_position_embeddings": 128,
        "torch_dtype": "float32",
    }
    (d / "config.json").write_text(json.dumps(config))
    spec = importlib.util.spec_from_file_location(f"toy_{family}", d / "modeling_toy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    model = module.ToyModel(module.ToyConfig(**{k: v for k, v in config.items() if k != "auto_map"})).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(d / "model.safetensors"))
    return d, model


@needs_hf_torch
@pytest.mark.parametrize(("family", "cls"), [("llada", LLaDA), ("dream", Dream)])
def test_remote_code_behind_the_adapter_protocol(family, cls, tmp_path):
    d, reference = _write(tmp_path, family)
    adapter = cls.from_pretrained(d, trust_remote_code=True)
    assert isinstance(adapter, ModelAdapter) and isinstance(adapter.model, RemoteModel)
    assert adapter.vocab_size == 384 and adapter.max_length == 128
    assert adapter.mask_id == reference.config.mask_token_id
    ids = adapter.encode(["the quick brown fox", "hi"])
    t = max(map(len, ids))
    tokens = torch.full((2, t), adapter.pad_id)
    for i, row in enumerate(ids):
        tokens[i, : len(row)] = torch.tensor(row)
    length = torch.tensor([len(r) for r in ids])
    out = adapter.logits(tokens, length)
    with torch.no_grad():
        want = reference(tokens, attention_mask=torch.arange(t)[None] < length[:, None]).logits
    if family == "dream":
        want = torch.cat((want[:, :1], want[:, :-1]), dim=1)
    torch.testing.assert_close(out, want)
    # The padded row matches the row alone: the mask reached the remote model.
    alone = adapter.logits(tokens[1:, : length[1]], length[1:])
    torch.testing.assert_close(out[1, : length[1]], alone[0])
    assert adapter.decode(ids)[1] == adapter.render_chat([{"role": "user", "content": "hi"}])


@needs_hf_torch
def test_remote_reference_precision_uses_autocast(tmp_path):
    d, _ = _write(tmp_path, "llada")
    adapter = LLaDA.from_pretrained(d, trust_remote_code=True, precision="reference")
    out = adapter.logits(torch.tensor([[1, 2, 3]]), torch.tensor([3]))
    assert out.dtype == torch.float16


def test_trust_remote_code_without_auto_map(llada_dir):
    with pytest.raises(AdapterError, match="auto_map"):
        LLaDA.from_pretrained(llada_dir, trust_remote_code=True)


@needs_hf_torch
def test_from_model_wraps_a_loaded_pair(tmp_path, llada):
    d, reference = _write(tmp_path, "llada")
    wrapped = LLaDA.from_model(reference, llada.tokenizer)
    assert isinstance(wrapped.model, RemoteModel)
    native = LLaDA.from_model(llada.model, llada.tokenizer)
    assert native.model is llada.model
    tokens = torch.tensor([[3, 4, 5, 6]])
    torch.testing.assert_close(native.logits(tokens, torch.tensor([4])), llada.logits(tokens, torch.tensor([4])))


@pytest.mark.skipif(_transformers_accepts_this_torch(), reason="the installed transformers accepts this torch")
def test_remote_code_on_a_torch_transformers_refuses_is_a_clear_adapter_error(tmp_path):
    d = tmp_path / "remote"
    d.mkdir()
    build_tokenizer("llada", d)
    config = {"model_type": "llada", "auto_map": {"AutoModel": "modeling_toy.ToyModel"}, "torch_dtype": "float32"}
    (d / "config.json").write_text(json.dumps(config))
    with pytest.raises(AdapterError, match=r"does not accept torch .*native implementation"):
        LLaDA.from_pretrained(d, trust_remote_code=True)
