"""PyTorch fp32 yardstick for `webnlu bench model --peer torch`.

Measures what `crate/src/cli/bench_model.rs` measures, on the same shapes, with Hugging Face
transformers on PyTorch: tokens per second of the encoder's forward pass (eval, no autograd)
and of one whole training step of `BertForSequenceClassification` (2 labels; dropout on,
cross-entropy, backward as deep as the freezing policy trains, global-norm clipping at 1.0,
`torch.optim.AdamW` at lr 2e-5). Weights are random (timing does not depend on their values):
`minilm` has all-MiniLM-L6-v2's shape, `bert-base` bert-base-uncased's.

Freezing policies as webnlu defines them: `head` trains the classifier only, `top:K` the last K
encoder layers + pooler + classifier, `all` everything. Token ids are random in [1000, vocab)
with [CLS] first and [SEP] last, every row full length (no padding), like webnlu's bench.

One JSON object per model on stdout, e.g.
{"model": "minilm", "device": "cuda", "forward_tokens_per_s": ..., "training": [{"freeze":
"head", "train_step_tokens_per_s": ...}, ...]}

Run: python3 tests/bench/torch_bert_bench.py --device cuda|cpu [--models minilm,bert-base]
     [--batch 8] [--seq 128] [--repeat 3] [--policies head,top:2,all] [--threads N]
"""

import argparse
import json
import sys
import time

import torch
import transformers

SHAPES = {
    # name: (layers, hidden, heads, intermediate, vocab, positions)
    "minilm": (6, 384, 12, 1536, 30522, 512),
    "bert-base": (12, 768, 12, 3072, 30522, 512),
}


def make_model(name, device):
    layers, hidden, heads, intermediate, vocab, positions = SHAPES[name]
    config = transformers.BertConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=positions,
        num_labels=2,
    )
    torch.manual_seed(0)
    return transformers.BertForSequenceClassification(config).to(device)


def random_ids(batch, seq, vocab, device):
    generator = torch.Generator().manual_seed(7)
    ids = torch.randint(1000, vocab, (batch, seq), generator=generator)
    ids[:, 0] = 101  # [CLS]
    ids[:, -1] = 102  # [SEP]
    return ids.to(device)


def trained_parameters(model, freeze):
    """The parameters webnlu's policy `freeze` trains, by transformers' names."""
    layers = model.config.num_hidden_layers
    if freeze == "all":
        return [p for _, p in model.named_parameters()]
    if freeze == "head":
        prefixes = ["classifier."]
    elif freeze.startswith("top:"):
        k = int(freeze[4:])
        prefixes = ["classifier.", "bert.pooler."]
        prefixes += [f"bert.encoder.layer.{i}." for i in range(layers - k, layers)]
    else:
        raise SystemExit(f"unknown freezing policy {freeze!r}")
    return [p for n, p in model.named_parameters() if any(n.startswith(x) for x in prefixes)]


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def mean_seconds(run, repeat, device):
    run()  # warm-up
    synchronize(device)
    started = time.perf_counter()
    for _ in range(repeat):
        run()
    synchronize(device)
    return (time.perf_counter() - started) / repeat


def bench(name, args, device):
    model = make_model(name, device)
    ids = random_ids(args.batch, args.seq, model.config.vocab_size, device)
    mask = torch.ones_like(ids)
    labels = (torch.arange(args.batch) % 2).to(device)
    tokens = args.batch * args.seq

    model.eval()

    def forward():
        with torch.no_grad():
            model.bert(input_ids=ids, attention_mask=mask).last_hidden_state

    line = {
        "model": name,
        "device": device.type,
        "peer": f"torch {torch.__version__}, transformers {transformers.__version__}",
        "attention": model.config._attn_implementation,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "batch": args.batch,
        "seq": args.seq,
        "forward_tokens_per_s": tokens / mean_seconds(forward, args.repeat, device),
        "training": [],
    }
    for freeze in args.policies.split(","):
        if freeze.startswith("top:") and int(freeze[4:]) > model.config.num_hidden_layers:
            continue
        model.train()
        for p in model.parameters():
            p.requires_grad_(False)
        trained = trained_parameters(model, freeze)
        for p in trained:
            p.requires_grad_(True)
        optimizer = torch.optim.AdamW(trained, lr=2e-5)

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, 1.0)
            optimizer.step()

        seconds = mean_seconds(step, args.repeat, device)
        line["training"].append({"freeze": freeze, "train_step_tokens_per_s": tokens / seconds})
    return line


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default="minilm,bert-base")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--policies", default="head,top:2,all")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    # fp32 all the way: no TF32 tensor-core shortcut for matmuls
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    for name in args.models.split(","):
        if name not in SHAPES:
            raise SystemExit(f"unknown model {name!r} ({', '.join(SHAPES)})")
        print(json.dumps(bench(name, args, device)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
