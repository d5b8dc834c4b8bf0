"""Reference numbers for tests/rust/tasks_train.rs, from PyTorch and transformers themselves.

Writes tests/fixtures/tasks/training_reference.json (committed, a few KB):
- `decay`: for every parameter name of a BertForSequenceClassification, a BertForMaskedLM and a
  DistilBertForSequenceClassification, whether the Hugging Face Trainer applies weight decay
  (`Trainer.get_decay_parameter_names`);
- `schedule`: get_linear_schedule_with_warmup's learning rates;
- `adamw`: three steps of torch.optim.AdamW with the Trainer's two parameter groups, the linear
  schedule and clip_grad_norm_, on small named tensors with given gradients.

Run: /work/torchenv/bin/python tests/tasks/training_reference.py   (CI never runs it)
"""
import json
import pathlib

import torch
import transformers
from transformers import (BertConfig, BertForMaskedLM, BertForSequenceClassification,
                          DistilBertConfig, DistilBertForSequenceClassification, Trainer,
                          get_linear_schedule_with_warmup)

OUT = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "tasks" / "training_reference.json"


def decay_names(model):
    # the Trainer's own rule (the method does not use the Trainer's state; building a Trainer
    # would need `accelerate`)
    decay = set(Trainer.get_decay_parameter_names(None, model))
    return {name: name in decay for name, _ in model.named_parameters()}


def main():
    torch.manual_seed(0)
    small = dict(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=12, max_position_embeddings=16)
    decay = {}
    decay.update(decay_names(BertForSequenceClassification(BertConfig(**small, num_labels=2))))
    decay.update(decay_names(BertForMaskedLM(BertConfig(**small))))
    decay.update(decay_names(DistilBertForSequenceClassification(DistilBertConfig(
        vocab_size=30, dim=8, n_layers=1, n_heads=2, hidden_dim=12, max_position_embeddings=16))))

    # the schedule
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1e-3)
    sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=3, num_training_steps=10)
    lrs = []
    for _ in range(11):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()

    # AdamW, two groups, schedule, clipping
    g = torch.Generator().manual_seed(1)
    names = {"classifier.weight": (2, 3), "classifier.bias": (2,),
             "encoder.layer.0.output.LayerNorm.weight": (3,),
             "encoder.layer.0.output.dense.weight": (3, 4)}
    params = {n: torch.nn.Parameter(torch.randn(*s, generator=g)) for n, s in names.items()}
    grads = [{n: torch.randn(*s, generator=g) for n, s in names.items()} for _ in range(3)]
    before = {n: p.detach().clone().flatten().tolist() for n, p in params.items()}
    groups = [
        {"params": [p for n, p in params.items() if decay_rule(n)], "weight_decay": 0.1},
        {"params": [p for n, p in params.items() if not decay_rule(n)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=0.05, betas=(0.9, 0.999), eps=1e-8)
    sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=1, num_training_steps=4)
    norms = []
    for step_grads in grads:
        for n, p in params.items():
            p.grad = step_grads[n].clone()
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(params.values()), max_norm=1.0)))
        opt.step()
        sched.step()
    after = {n: p.detach().flatten().tolist() for n, p in params.items()}
    out = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "decay": decay,
        "schedule": {"peak_lr": 1e-3, "warmup": 3, "total": 10, "lrs": lrs},
        "adamw": {
            "lr": 0.05, "weight_decay": 0.1, "warmup": 1, "total": 4, "max_norm": 1.0,
            "shapes": {n: list(s) for n, s in names.items()},
            "before": before,
            "grads": [{n: t.flatten().tolist() for n, t in s.items()} for s in grads],
            "norms": norms,
            "after": after,
        },
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", OUT)


def decay_rule(name):
    # the Trainer's groups for these names (the models above check the rule on real names)
    return "bias" not in name and "LayerNorm" not in name


if __name__ == "__main__":
    main()
