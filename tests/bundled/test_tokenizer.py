"""The bundled word-level tokenizer speaks LLaDA's special tokens."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from daedal.models.bundled import tasks
from daedal.models.bundled.tokenizer import EOS, EOT, MASK, SPECIAL_TOKENS, save_tokenizer, vocabulary

LLADA_SPECIALS = (
    "<|startoftext|>",
    "<|endoftext|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|mdm_mask|>",
)


def test_special_tokens_are_llada_spellings() -> None:
    assert set(LLADA_SPECIALS) <= set(SPECIAL_TOKENS)


def test_autotokenizer_loads_and_round_trips(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    save_tokenizer(tmp_path)
    tok = AutoTokenizer.from_pretrained(str(tmp_path))
    vocab = vocabulary()
    assert tok.eos_token == EOS and tok.convert_tokens_to_ids(MASK) == vocab[MASK]
    assert tok.convert_tokens_to_ids(EOT) == vocab[EOT]
    text = "add: 3 4 5"
    ids = tok(text + EOT + EOS + MASK, add_special_tokens=False)["input_ids"]
    assert ids[-3:] == [vocab[EOT], vocab[EOS], vocab[MASK]]
    assert tok.decode(ids[:-3]).split() == tasks.normalize(text)
    rendered = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
    assert rendered == (
        "<|startoftext|><|start_header_id|>user<|end_header_id|>\n\n"
        + text
        + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_every_task_word_is_in_the_vocabulary(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    save_tokenizer(tmp_path)
    tok = AutoTokenizer.from_pretrained(str(tmp_path))
    unk = tok.convert_tokens_to_ids("<|unk|>")
    for d in tasks.heldout_set(10):
        ids = tok(d["prompt"] + " " + d["answer"], add_special_tokens=False)["input_ids"]
        assert unk not in ids


def test_light_tokenizer_gives_transformers_ids_and_texts(tmp_path: Path) -> None:
    """The bundled checkpoint loads its tokenizer through ``tokenizers`` alone, with the same results."""
    from transformers import AutoTokenizer

    from daedal.models import bundled
    from daedal.models._light_tokenizer import LightTokenizer

    assert LightTokenizer.handles(bundled.path())
    light = LightTokenizer.from_directory(bundled.path())
    slow = AutoTokenizer.from_pretrained(str(bundled.path()))
    texts = [d["prompt"] + " " + d["answer"] + EOT + EOS for d in tasks.heldout_set(6)] + [
        "<|startoftext|><|start_header_id|>user<|end_header_id|>\n\nreverse: a b<|eot_id|>",
        "sort: x , 7 foo",
    ]
    assert light(texts, add_special_tokens=False)["input_ids"] == slow(texts, add_special_tokens=False)["input_ids"]
    for text in texts:
        ids = slow.encode(text, add_special_tokens=False)
        assert light.encode(text, add_special_tokens=False) == ids
        for skip in (False, True):
            assert light.decode(ids, skip_special_tokens=skip) == slow.decode(ids, skip_special_tokens=skip)
    assert light.get_vocab() == slow.get_vocab() and len(light) == len(slow)
    assert light.convert_tokens_to_ids(MASK) == slow.convert_tokens_to_ids(MASK)
    assert light.words_unknown("sort: x foo , bar") == ["foo", "bar"]
    # LLaDA-8B-style configs (an added_tokens_decoder, clean-up of spaces) keep going through transformers
    save_tokenizer(tmp_path)
    cfg = json.loads((tmp_path / "tokenizer_config.json").read_text())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**cfg, "added_tokens_decoder": {}}))
    assert not LightTokenizer.handles(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**cfg, "clean_up_tokenization_spaces": True}))
    assert not LightTokenizer.handles(tmp_path)


def test_loading_the_bundled_model_imports_no_transformers_and_no_dynamo() -> None:
    code = (
        "import sys\n"
        "from daedal.models import bundled\n"
        "adapter = bundled.load()\n"
        "assert adapter.decode(adapter.encode(['reverse: a b']))[0].endswith('reverse : a b <|eot_id|> "
        "<|start_header_id|> assistant <|end_header_id|>')\n"
        "print('LOADED', sorted(m for m in sys.modules if m.startswith(('transformers', 'torch._dynamo'))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout
