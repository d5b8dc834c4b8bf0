"""Loads a directory written by `webnlu train-head` (a mean-pooled classifier on a
sentence-transformers model) in transformers and compares the probabilities of its classifier
on mean-pooled hidden states with `webnlu classify`.

Run: /work/torchenv/bin/python tests/tasks/check_saved_classifier.py DIR target/release/webnlu
(CI never runs it: it needs torch.)
"""
import json, subprocess, sys, torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
d = sys.argv[1]
texts = ["A gorgeous, moving film.", "Dull, lifeless and far too long.", "It is a film."]
m = AutoModelForSequenceClassification.from_pretrained(d).eval()
tok = AutoTokenizer.from_pretrained(d)
print("loaded", type(m).__name__, m.config.id2label, getattr(m.config, "classifier_pooling", None))
b = tok(texts, padding=True, return_tensors="pt")
with torch.no_grad():
    h = m.bert(**b).last_hidden_state
    mask = b["attention_mask"].unsqueeze(-1).float()
    pooled = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    probs = torch.softmax(m.classifier(pooled), -1)
out = subprocess.run([sys.argv[2], "classify", "--model", d, "--device", "cpu"], input="\n".join(texts) + "\n",
                     capture_output=True, text=True, check=True).stdout.splitlines()
ours = [json.loads(l)["scores"] for l in out]
for t, p, o in zip(texts, probs.tolist(), ours):
    print(t, "torch", [round(x, 6) for x in p], "webnlu", [round(x, 6) for x in o])
print("max abs diff", max(abs(a - b) for p, o in zip(probs.tolist(), ours) for a, b in zip(p, o)))
