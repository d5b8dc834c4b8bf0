"""Reference numbers for tests/rust/tasks/train.rs, from PyTorch and transformers themselves.

Writes tests/fixtures/tasks/training_reference.json (committed, a few KB):
- `decay`: for every parameter name of a BertForSequenceClassification, a BertForMaskedLM and a
  DistilBertForSequenceClassification, whether the Hugging Face Trainer applies weight decay
  (`Trainer.get_decay_parameter_names`);
- `schedule`: get_linear_schedule_with_warmup's learning rates;
- `adamw`: three steps of torch.optim.AdamW with the Trainer's two parameter groups, the linear
  schedule and clip_grad_norm_, on small named tensors with given gradients;
- `windows`: fine-tuning the committed random BertForSequenceClassification
  (tests/fixtures/bert-reference/random/bert-random-classifier, dropout set to 0) on examples
  longer than a window: HF tokenizers' overflow windows (max_length, stride), each example's
  logits the mean of its windows' logits, cross-entropy on the mean, three AdamW steps (the
  Trainer's groups, linear schedule, clipping), for freeze head / top:1 / all: the window ids,
  the losses, the first step's gradients and the parameters after the steps, for a few
  parameters (the JSON stays small).
- `tokens`: fine-tuning a token classifier on the committed random BertForTokenClassification
  (tests/fixtures/bert-reference/random/bert-random-ner, dropout set to 0, its classifier
  replaced by one for the examples' sorted labels, whose initial values the fixture keeps)
  on word-labelled examples as transformers' token-classification recipe: `is_split_into_words`
  tokens cut to max_length, each word's label on its first WordPiece and -100 elsewhere,
  cross-entropy (mean over the labelled tokens), three AdamW steps for head / top:1 / all: the
  ids and aligned labels, the losses, the first step's gradients and the parameters after.
- `problems`: fine-tuning a sequence classifier for regression (the committed random
  bert-random-regression, MSE on a number per text) and for multi-label classification (the
  random classifier with `problem_type="multi_label_classification"`, BCE with logits on a 0/1
  per label), dropout 0, three AdamW steps for head / all: losses, gradients, parameters after.
- `masked_lm`: one masked-LM step of the committed random BertForPreTraining read as
  BertForMaskedLM (dropout 0) on corrupted ids given here (some [MASK], one random, one kept),
  labels -100 except at the chosen tokens: the loss and gradients for head / all.

Run: /work/torchenv/bin/python tests/tasks/training_reference.py   (CI never runs it)
The committed `windows` numbers were made with transformers 4.57.1; 5.25.0 (which made `tokens`,
its versions recorded in the case) gives the same within 3e-7. The tokenizers are made with
`from_pretrained(directory)`: transformers 5 ignores a `vocab_file=` given to the constructor
(every token [UNK]).
"""
import json
import pathlib

import collections

import torch
import transformers
from transformers import (BertConfig, BertForMaskedLM, BertForSequenceClassification,
                          BertTokenizerFast, DistilBertConfig, DistilBertForSequenceClassification,
                          Trainer, get_linear_schedule_with_warmup)

OUT = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "tasks" / "training_reference.json"
RANDOM_CLASSIFIER = (pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "bert-reference"
                     / "random" / "bert-random-classifier")

# examples of the window case: two fit one window of WINDOW_LENGTH, the others need 2 to 4
WINDOW_EXAMPLES = [
    ("the cat sat on the house .", "positive"),
    ("a sad man saw the old car near the river and the dog ran under the big tree with a "
     "small bird , but the woman liked the song .", "negative"),
    ("the film was very boring !", "negative"),
    ("happy children read a new book in the city and the sun was not sad . the rain ran over "
     "the green tree and the blue river was good .", "positive"),
    ("the movie is great and funny , the song is very good , the book was read by the old "
     "woman near the house . a red car , a big dog , a small cat and a fish were happy in "
     "the snow at night .", "neutral"),
    ("a dog liked the fish and the cat ate the bird under the tree .", "neutral"),
]
WINDOW_LENGTH = 10
WINDOW_STRIDE = 3
WINDOW_STEPS = 3
WINDOW_LR = 0.005
WINDOW_DECAY = 0.01
# the parameters whose gradients / values the fixture keeps (those that train in a policy)
WINDOW_KEPT = ["classifier.weight", "classifier.bias", "bert.pooler.dense.bias",
               "bert.encoder.layer.1.output.LayerNorm.weight",
               "bert.encoder.layer.1.attention.self.query.bias",
               "bert.encoder.layer.0.output.dense.bias", "bert.embeddings.LayerNorm.weight"]
WINDOW_POLICIES = {
    "head": lambda n: n.startswith("classifier."),
    "top:1": lambda n: n.startswith(("classifier.", "bert.pooler.", "bert.encoder.layer.1.")),
    "all": lambda n: True,
}


def rounded(values):
    return [float("%.8g" % v) for v in values]


def windows_case():
    # from the directory: transformers 5 ignores `vocab_file=` given to the constructor
    tok = BertTokenizerFast.from_pretrained(RANDOM_CLASSIFIER, do_lower_case=True)
    texts = [t for t, _ in WINDOW_EXAMPLES]
    labels_sorted = sorted({l for _, l in WINDOW_EXAMPLES})
    classes = torch.tensor([labels_sorted.index(l) for _, l in WINDOW_EXAMPLES])
    enc = tok(texts, max_length=WINDOW_LENGTH, stride=WINDOW_STRIDE, truncation=True,
              return_overflowing_tokens=True, padding=True, return_tensors="pt")
    owner = enc.pop("overflow_to_sample_mapping")  # (W) the example of each window
    window_ids = [[] for _ in texts]
    for w, e in enumerate(owner.tolist()):
        ids = enc["input_ids"][w][enc["attention_mask"][w].bool()].tolist()
        window_ids[e].append(ids)
    counts = torch.bincount(owner, minlength=len(texts)).float()
    assert counts.max() >= 3 and counts.min() == 1, counts
    policies = {}
    for policy, trains in WINDOW_POLICIES.items():
        model = BertForSequenceClassification.from_pretrained(
            RANDOM_CLASSIFIER, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
            classifier_dropout=0.0)
        assert model.config.id2label == dict(enumerate(labels_sorted)), model.config.id2label
        model.train()
        params = {n: p for n, p in model.named_parameters()}
        for n, p in params.items():
            p.requires_grad_(trains(n))
        trained = {n: p for n, p in params.items() if trains(n)}
        groups = [
            {"params": [p for n, p in trained.items() if decay_rule(n)], "weight_decay": WINDOW_DECAY},
            {"params": [p for n, p in trained.items() if not decay_rule(n)], "weight_decay": 0.0},
        ]
        opt = torch.optim.AdamW(groups, lr=WINDOW_LR, betas=(0.9, 0.999), eps=1e-8)
        sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=0,
                                                num_training_steps=WINDOW_STEPS)
        losses, truncated_losses, first_grads = [], [], None
        for step in range(WINDOW_STEPS):
            opt.zero_grad()
            window_logits = model(**enc).logits  # (W, L)
            logits = torch.zeros(len(texts), window_logits.shape[1]).index_add(
                0, owner, window_logits) / counts[:, None]  # (E, L)
            loss = torch.nn.functional.cross_entropy(logits, classes)
            with torch.no_grad():  # what training on the first windows only would say
                first = torch.tensor([owner.tolist().index(e) for e in range(len(texts))])
                truncated_losses.append(float(torch.nn.functional.cross_entropy(
                    window_logits[first], classes)))
            loss.backward()
            losses.append(float(loss.detach()))
            if step == 0:
                first_grads = {n: rounded(trained[n].grad.flatten().tolist())
                               for n in WINDOW_KEPT if n in trained}
            torch.nn.utils.clip_grad_norm_(list(trained.values()), max_norm=1.0)
            opt.step()
            sched.step()
        policies[policy] = {
            "losses": losses,
            "truncated_losses": truncated_losses,
            "grads": first_grads,
            "after": {n: rounded(trained[n].detach().flatten().tolist())
                      for n in WINDOW_KEPT if n in trained},
        }
    return {
        "model": "tests/fixtures/bert-reference/random/bert-random-classifier",
        "examples": [{"text": t, "label": l} for t, l in WINDOW_EXAMPLES],
        "max_length": WINDOW_LENGTH, "stride": WINDOW_STRIDE, "steps": WINDOW_STEPS,
        "lr": WINDOW_LR, "weight_decay": WINDOW_DECAY, "max_norm": 1.0,
        "window_ids": window_ids,
        "policies": policies,
    }


RANDOM_NER = (pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "bert-reference"
              / "random" / "bert-random-ner")
# words of the random vocabulary: "walked" and "sadness" are two WordPieces, "paris" and "zola"
# are [UNK], "dog." is two tokens of one word; the last example is cut by TOKEN_LENGTH
TOKEN_EXAMPLES = [
    ("emile zola saw the river", "B-PER I-PER O O B-LOC"),
    ("the old man walked to paris", "O O O O O B-LOC"),
    ("a happy woman liked the dog. in the city", "O O B-PER O O O O O B-LOC"),
    ("the child read a book near the big river and the small tree with the red car",
     "O B-PER O O O O O B-LOC I-LOC O O O O O O O O"),
    ("sadness was over the house", "O O O O B-LOC"),
]
TOKEN_LENGTH = 14
TOKEN_KEPT = ["classifier.weight", "classifier.bias",
              "bert.encoder.layer.1.output.LayerNorm.weight",
              "bert.encoder.layer.1.attention.self.query.bias",
              "bert.encoder.layer.0.output.dense.bias", "bert.embeddings.LayerNorm.weight"]
TOKEN_POLICIES = {
    "head": lambda n: n.startswith("classifier."),
    "top:1": lambda n: n.startswith(("classifier.", "bert.encoder.layer.1.")),
    "all": lambda n: True,
}


def tokens_case():
    from transformers import BertForTokenClassification
    tok = BertTokenizerFast.from_pretrained(RANDOM_NER, do_lower_case=True)
    words = [t.split() for t, _ in TOKEN_EXAMPLES]
    tags = [l.split() for _, l in TOKEN_EXAMPLES]
    labels_sorted = sorted({t for ts in tags for t in ts})
    enc = tok(words, is_split_into_words=True, truncation=True, max_length=TOKEN_LENGTH,
              padding=True, return_tensors="pt")
    aligned = []
    for i, ts in enumerate(tags):
        seen, row = set(), []
        for w in enc.word_ids(i):
            if w is None or w in seen:
                row.append(-100)
            else:
                seen.add(w)
                row.append(labels_sorted.index(ts[w]))
        aligned.append(row)
    targets = torch.tensor(aligned)
    ids = [enc["input_ids"][i][enc["attention_mask"][i].bool()].tolist() for i in range(len(words))]
    torch.manual_seed(3)
    head_weight = torch.randn(len(labels_sorted), 32) * 0.2
    head_bias = torch.randn(len(labels_sorted)) * 0.1
    policies = {}
    for policy, trains in TOKEN_POLICIES.items():
        model = BertForTokenClassification.from_pretrained(
            RANDOM_NER, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
            num_labels=len(labels_sorted), ignore_mismatched_sizes=True)
        with torch.no_grad():
            model.classifier.weight.copy_(head_weight)
            model.classifier.bias.copy_(head_bias)
        model.train()
        params = {n: p for n, p in model.named_parameters()}
        for n, p in params.items():
            p.requires_grad_(trains(n))
        trained = {n: p for n, p in params.items() if trains(n)}
        groups = [
            {"params": [p for n, p in trained.items() if decay_rule(n)], "weight_decay": WINDOW_DECAY},
            {"params": [p for n, p in trained.items() if not decay_rule(n)], "weight_decay": 0.0},
        ]
        opt = torch.optim.AdamW(groups, lr=WINDOW_LR, betas=(0.9, 0.999), eps=1e-8)
        sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=0,
                                                num_training_steps=WINDOW_STEPS)
        losses, first_grads = [], None
        for step in range(WINDOW_STEPS):
            opt.zero_grad()
            loss = model(**enc, labels=targets).loss  # mean over the labelled tokens
            loss.backward()
            losses.append(float(loss.detach()))
            if step == 0:
                first_grads = {n: rounded(trained[n].grad.flatten().tolist())
                               for n in TOKEN_KEPT if n in trained}
            torch.nn.utils.clip_grad_norm_(list(trained.values()), max_norm=1.0)
            opt.step()
            sched.step()
        policies[policy] = {
            "losses": losses,
            "grads": first_grads,
            "after": {n: rounded(trained[n].detach().flatten().tolist())
                      for n in TOKEN_KEPT if n in trained},
        }
    return {
        "model": "tests/fixtures/bert-reference/random/bert-random-ner",
        "examples": [{"words": w, "labels": t} for w, t in zip(words, tags)],
        "labels": labels_sorted,
        "max_length": TOKEN_LENGTH, "steps": WINDOW_STEPS, "lr": WINDOW_LR,
        "weight_decay": WINDOW_DECAY, "max_norm": 1.0,
        "ids": ids,
        "targets": [row[:len(i)] for row, i in zip(aligned, ids)],
        "initial_head": {"classifier.weight": rounded(head_weight.flatten().tolist()),
                         "classifier.bias": rounded(head_bias.flatten().tolist())},
        "policies": policies,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }


RANDOM_REGRESSION = RANDOM_CLASSIFIER.parent / "bert-random-regression"
PROBLEM_TEXTS = ["the cat sat on the house .", "a sad man saw the old car", "the film was very boring !",
                 "happy children read a new book", "the song is good and funny", "a dog ate the bird"]
PROBLEM_LABELS = {
    "regression": ["0.5", "-1.25", "-2", "1.5", "2.25", "0"],
    # labels of the random classifier's id2label (negative, neutral, positive), several per text
    "multi_label_classification": ["neutral", "negative", "negative,neutral", "positive", "positive,neutral", ""],
}
PROBLEM_KEPT = ["classifier.weight", "classifier.bias", "bert.pooler.dense.bias",
                "bert.encoder.layer.1.output.LayerNorm.weight", "bert.embeddings.LayerNorm.weight"]


def problems_case():
    out = {}
    for problem, labels in PROBLEM_LABELS.items():
        directory = RANDOM_REGRESSION if problem == "regression" else RANDOM_CLASSIFIER
        tok = BertTokenizerFast.from_pretrained(directory, do_lower_case=True)
        enc = tok(PROBLEM_TEXTS, padding=True, return_tensors="pt")
        if problem == "regression":
            targets = torch.tensor([[float(l)] for l in labels])
        else:
            names = ["negative", "neutral", "positive"]
            targets = torch.tensor([[1.0 if n in l.split(",") else 0.0 for n in names] for l in labels])
        policies = {}
        for policy in ["head", "all"]:
            model = BertForSequenceClassification.from_pretrained(
                directory, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                classifier_dropout=0.0, problem_type=problem)
            model.train()
            trains = WINDOW_POLICIES[policy]
            params = dict(model.named_parameters())
            for n, p in params.items():
                p.requires_grad_(trains(n))
            trained = {n: p for n, p in params.items() if trains(n)}
            groups = [
                {"params": [p for n, p in trained.items() if decay_rule(n)], "weight_decay": WINDOW_DECAY},
                {"params": [p for n, p in trained.items() if not decay_rule(n)], "weight_decay": 0.0},
            ]
            opt = torch.optim.AdamW(groups, lr=WINDOW_LR, betas=(0.9, 0.999), eps=1e-8)
            sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=0,
                                                    num_training_steps=WINDOW_STEPS)
            losses, first_grads = [], None
            for step in range(WINDOW_STEPS):
                opt.zero_grad()
                loss = model(**enc, labels=targets).loss  # MSE / BCE with logits, mean
                loss.backward()
                losses.append(float(loss.detach()))
                if step == 0:
                    first_grads = {n: rounded(trained[n].grad.flatten().tolist())
                                   for n in PROBLEM_KEPT if n in trained}
                torch.nn.utils.clip_grad_norm_(list(trained.values()), max_norm=1.0)
                opt.step()
                sched.step()
            policies[policy] = {
                "losses": losses,
                "grads": first_grads,
                "after": {n: rounded(trained[n].detach().flatten().tolist())
                          for n in PROBLEM_KEPT if n in trained},
            }
        out[problem] = {
            "model": str(directory.relative_to(directory.parents[4])),
            "examples": [{"text": t, "label": l} for t, l in zip(PROBLEM_TEXTS, labels)],
            "steps": WINDOW_STEPS, "lr": WINDOW_LR, "weight_decay": WINDOW_DECAY, "max_norm": 1.0,
            "policies": policies,
        }
    out["versions"] = {"torch": torch.__version__, "transformers": transformers.__version__}
    return out


RANDOM_PRETRAINING = RANDOM_CLASSIFIER.parent / "bert-random"
MLM_TEXTS = ["the cat sat on the house .", "a sad man saw the old car near the river",
             "happy children read a new book"]
MLM_KEPT = ["cls.predictions.transform.dense.weight", "cls.predictions.transform.LayerNorm.weight",
            "cls.predictions.bias", "bert.encoder.layer.1.output.LayerNorm.weight",
            "bert.embeddings.word_embeddings.weight"]


def masked_lm_case():
    from transformers import BertForMaskedLM
    tok = BertTokenizerFast.from_pretrained(RANDOM_PRETRAINING, do_lower_case=True)
    rows = []
    for i, text in enumerate(MLM_TEXTS):
        ids = tok(text)["input_ids"]
        corrupted, labels = list(ids), [-100] * len(ids)
        for t in range(1, len(ids) - 1):
            if (t + i) % 3 == 0:  # chosen
                labels[t] = ids[t]
                corrupted[t] = tok.mask_token_id if t % 2 == 0 else (7 if t % 5 == 0 else ids[t])
        rows.append({"ids": corrupted, "labels": labels})
    width = max(len(r["ids"]) for r in rows)
    ids = torch.tensor([r["ids"] + [0] * (width - len(r["ids"])) for r in rows])
    mask = torch.tensor([[1] * len(r["ids"]) + [0] * (width - len(r["ids"])) for r in rows])
    labels = torch.tensor([r["labels"] + [-100] * (width - len(r["labels"])) for r in rows])
    policies = {}
    for policy, trains in {"head": lambda n: n.startswith("cls."), "all": lambda n: True}.items():
        model = BertForMaskedLM.from_pretrained(RANDOM_PRETRAINING, hidden_dropout_prob=0.0,
                                                attention_probs_dropout_prob=0.0)
        model.train()
        params = dict(model.named_parameters())
        for n, p in params.items():
            p.requires_grad_(trains(n))
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        policies[policy] = {
            "loss": float(loss.detach()),
            # the word embeddings (the tied decoder too): their first 8 rows, to stay small
            "grads": {n: rounded(params[n].grad[:8].flatten().tolist())
                      for n in MLM_KEPT if params[n].grad is not None},
        }
    return {
        "model": "tests/fixtures/bert-reference/random/bert-random",
        "batch": rows, "policies": policies,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }


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
        "windows": windows_case(),
        "tokens": tokens_case(),
        "problems": problems_case(),
        "masked_lm": masked_lm_case(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", OUT)


def decay_rule(name):
    # the Trainer's groups for these names (the models above check the rule on real names)
    return "bias" not in name and "LayerNorm" not in name


if __name__ == "__main__":
    main()
