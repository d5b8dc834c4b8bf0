"""Loads a directory written by `webnlu train-head` in transformers and compares its
classifier's probabilities with `webnlu classify`: a mean-pooled classifier on a
sentence-transformers model (`"classifier_pooling": "mean"`: the classifier applied to
mean-pooled hidden states), or transformers' own BertForSequenceClassification head (pooled
[CLS]). Fails when transformers reports missing, unexpected or mismatched tensors: the saved
checkpoint must be exactly the architecture its config names (no MLM / NSP head left over).

Run: /work/torchenv/bin/python tests/tasks/check_saved_classifier.py DIR target/release/webnlu
(CI never runs it: it needs torch.)
"""
import json, subprocess, sys, torch
from safetensors import safe_open
from transformers import AutoModelForSequenceClassification, AutoTokenizer
d = sys.argv[1]
texts = ["A gorgeous, moving film.", "Dull, lifeless and far too long.", "It is a film."]
m, info = AutoModelForSequenceClassification.from_pretrained(d, output_loading_info=True)
m.eval()
tok = AutoTokenizer.from_pretrained(d)
pooling = getattr(m.config, "classifier_pooling", None)
with safe_open(f"{d}/model.safetensors", "pt") as f:
    names = sorted(f.keys())
print("loaded", type(m).__name__, m.config.architectures, m.config.id2label, "pooling", pooling)
print("tensors", len(names), "heads:", [n for n in names if not n.startswith(("bert.", "distilbert."))])
print("loading info", {k: v for k, v in info.items()})
b = tok(texts, padding=True, return_tensors="pt")
with torch.no_grad():
    if pooling == "mean":
        h = m.base_model(**b).last_hidden_state
        mask = b["attention_mask"].unsqueeze(-1).float()
        pooled = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        probs = torch.softmax(m.classifier(pooled), -1)
    else:
        probs = torch.softmax(m(**b).logits, -1)
out = subprocess.run([sys.argv[2], "classify", "--model", d, "--device", "cpu"], input="\n".join(texts) + "\n",
                     capture_output=True, text=True, check=True).stdout.splitlines()
ours = [json.loads(l)["scores"] for l in out]
for t, p, o in zip(texts, probs.tolist(), ours):
    print(t, "torch", [round(x, 6) for x in p], "webnlu", [round(x, 6) for x in o])
diff = max(abs(a - b) for p, o in zip(probs.tolist(), ours) for a, b in zip(p, o))
print("max abs diff", diff)
problems = {k: v for k, v in info.items() if v}
if problems:
    sys.exit(f"transformers reported {problems}")
if diff > 1e-4:
    sys.exit(f"probabilities differ by {diff}")
