"""The bundled word-level tokenizer speaks LLaDA's special tokens."""

from __future__ import annotations

from pathlib import Path

from daedal.models.bundled import tasks
from daedal.models.bundled.tokenizer import EOS, EOT, MASK, SPECIAL_TOKENS, save_tokenizer, vocabulary

LLADA_SPECIALS = ("<|startoftext|>", "<|endoftext|>", "<|start_header_id|>", "<|end_header_id|>",
                  "<|eot_id|>", "<|mdm_mask|>")


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
    rendered = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                       add_generation_prompt=True)
    assert rendered == ("<|startoftext|><|start_header_id|>user<|end_header_id|>\n\n" + text
                        + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")


def test_every_task_word_is_in_the_vocabulary(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    save_tokenizer(tmp_path)
    tok = AutoTokenizer.from_pretrained(str(tmp_path))
    unk = tok.convert_tokens_to_ids("<|unk|>")
    for d in tasks.heldout_set(10):
        ids = tok(d["prompt"] + " " + d["answer"], add_special_tokens=False)["input_ids"]
        assert unk not in ids
