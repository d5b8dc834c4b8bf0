"""Exports a safetensors BERT model to ONNX so that transformers.js can load it as a local model.

    python tests/bench/export_onnx.py MODEL_DIR OUT_DIR [--opset 14] [--no-check]

MODEL_DIR: a Hugging Face BERT folder (config.json, model.safetensors, tokenizer.json, ...),
e.g. tests/fixtures/models/all-minilm-l6-v2. Writes OUT_DIR/onnx/model.onnx (the encoder:
inputs input_ids, attention_mask, token_type_ids of shape [batch, sequence], both axes dynamic;
output last_hidden_state [batch, sequence, hidden], fp32) and copies config.json,
tokenizer.json, tokenizer_config.json and special_tokens_map.json (when present) beside it,
which is the layout transformers.js expects of a model folder (`{localModelPath}/{name}/...`).

Then, when onnxruntime is importable, runs the ONNX graph and PyTorch on a padded batch of
sentences and fails when they differ by more than a small tolerance (bench-only: needs torch,
transformers, onnx; see README, "Benchmarks against PyTorch and transformers.js").
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch
import transformers

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"]
CHECK_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Benchmarks only mean something when both sides compute the same thing.",
    "Hi!",
]


class EncoderOnly(torch.nn.Module):
    """The model's last hidden state alone, with all three inputs named and required."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state


def export(model_dir: Path, out_dir: Path, opset: int) -> Path:
    model = transformers.AutoModel.from_pretrained(model_dir).float()
    model.eval()
    if model.config.model_type != "bert":
        sys.exit(f"export_onnx.py handles BERT models, got model_type {model.config.model_type!r}")
    wrapper = EncoderOnly(model).eval()
    onnx_path = out_dir / "onnx" / "model.onnx"
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    ids = torch.tensor([[101, 7592, 2088, 999, 102, 0], [101, 2023, 2003, 1037, 3231, 102]])
    mask = (ids != 0).long()
    types = torch.zeros_like(ids)
    axes = {0: "batch_size", 1: "sequence_length"}
    with torch.no_grad():
        kwargs = dict(
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "token_type_ids": axes,
                "last_hidden_state": axes,
            },
            opset_version=opset,
            do_constant_folding=True,
        )
        try:
            # The TorchScript exporter: torch >= 2.5 defaults to the dynamo one, which wants
            # dynamic_shapes instead of dynamic_axes.
            torch.onnx.export(wrapper, (ids, mask, types), str(onnx_path), dynamo=False, **kwargs)
        except TypeError:  # torch < 2.5 has no `dynamo` argument
            torch.onnx.export(wrapper, (ids, mask, types), str(onnx_path), **kwargs)
    # One file: transformers.js fetches model.onnx only (no external data by default).
    data = onnx_path.with_name(onnx_path.name + ".data")
    if data.exists():
        import onnx

        proto = onnx.load(str(onnx_path), load_external_data=True)
        onnx.save_model(proto, str(onnx_path), save_as_external_data=False)
        data.unlink()
    copied = []
    for name in ["config.json", *TOKENIZER_FILES]:
        if (model_dir / name).exists():
            shutil.copyfile(model_dir / name, out_dir / name)
            copied.append(name)
    if "tokenizer.json" not in copied:
        sys.exit(f"{model_dir} has no tokenizer.json: transformers.js needs it")
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB, opset {opset}); copied {', '.join(copied)}")
    return onnx_path


def check(model_dir: Path, onnx_path: Path, tolerance: float) -> None:
    try:
        import numpy as np
        import onnxruntime
    except ImportError:
        print("onnxruntime is not installed: skipped the check against PyTorch")
        return
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModel.from_pretrained(model_dir).float().eval()
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    # A padded batch (other batch size and length than the traced example) and one unpadded sentence.
    for sentences in [CHECK_SENTENCES, CHECK_SENTENCES[:1]]:
        batch = tokenizer(sentences, padding=True, return_tensors="pt")
        if "token_type_ids" not in batch:
            batch["token_type_ids"] = torch.zeros_like(batch["input_ids"])
        with torch.no_grad():
            want = model(**batch).last_hidden_state.numpy()
        feeds = {name: batch[name].numpy().astype(np.int64) for name in ["input_ids", "attention_mask", "token_type_ids"]}
        (got,) = session.run(["last_hidden_state"], feeds)
        # Compare the real tokens only: padded positions are not used by pooling.
        mask = batch["attention_mask"].numpy().astype(bool)
        diff = float(np.abs(got[mask] - want[mask]).max())
        scale = float(np.abs(want[mask]).max())
        print(json.dumps({"check": "onnxruntime vs torch", "shape": list(got.shape), "max_abs_diff": diff,
                          "max_abs_value": scale, "tolerance": tolerance}))
        if not diff <= tolerance:
            sys.exit(f"ONNX output differs from PyTorch by {diff} > {tolerance}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--opset", type=int, default=14)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--no-check", action="store_true", help="skip the onnxruntime check")
    args = parser.parse_args()
    if not (args.model_dir / "config.json").exists():
        sys.exit(f"{args.model_dir}/config.json not found")
    onnx_path = export(args.model_dir, args.out_dir, args.opset)
    if not args.no_check:
        check(args.model_dir, onnx_path, args.tolerance)


if __name__ == "__main__":
    main()
