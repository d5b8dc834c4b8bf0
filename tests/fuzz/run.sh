#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS [TARGET ...]: runs every fuzz target (or the named ones) for SECONDS
# each with libFuzzer (cargo-fuzz, nightly), then keeps, of everything found, the inputs of at
# most 4 KiB that add coverage as the saved corpus (tests/fuzz/corpus/<target>/, replayed by
# `make test` through tests/rust/io/fuzz_replay.rs); the whole working corpus stays in target/fuzz/.
# Ends with one line: "fuzz: T targets, E execs, C crashes"; crashing inputs are left in
# target/fuzz/artifacts/<target>/ (fix the bug, then move the input to tests/fuzz/regressions/).
#
# Limits, as libFuzzer options: a hang is an input that runs over 1 s (-timeout=1); a single
# allocation over 256 MB is a crash (-malloc_limit_mb=256: the inputs are at most 128 KiB, so no
# header may make the reader allocate more than that); inputs up to 128 KiB (-max_len).
# Needs: `rustup toolchain install nightly` and `cargo install cargo-fuzz` (both done here when
# missing), python3 for the seeds, and the fixtures (bash tests/fixtures/generate.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
seconds=${1:?usage: tests/fuzz/run.sh SECONDS [TARGET ...]}
shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(sed -n 's/^name = "\([a-z_0-9]*\)"$/\1/p' tests/fuzz/Cargo.toml | grep -v '^webnlu-fuzz$')
fi
log() { printf '[fuzz] %s\n' "$*" >&2; }

rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz

WORK=$ROOT/target/fuzz
mkdir -p "$WORK"
M=tests/fixtures/models
R=tests/fixtures/bert-reference

# seed TARGET FILE...: copies the files that exist into the target's seed folder.
seed() {
  local target=$1; shift
  mkdir -p "$WORK/seeds/$target"
  for file in "$@"; do [ -f "$file" ] && cp "$file" "$WORK/seeds/$target/$(echo "$file" | tr '/' '_')"; done
  return 0
}
rm -rf "$WORK/seeds"
seed safetensors $R/random/bert-random/model.safetensors $R/random/distilbert-random/model.safetensors
seed pytorch_bin $R/torch-bin/tiny-zip.bin $R/torch-bin/tiny-legacy.bin
seed hdf5 $M/elmo-fixture/elmo_token_embeddings.hdf5 $M/elmo-fixture/lm_embeddings_1.hdf5
seed config_json $R/random/*/config.json $M/*/config.json
seed vocab_txt $R/random/bert-random-ner/vocab.txt
seed elmo_options $M/elmo-fixture/options.json
python3 - "$WORK/seeds" "$R/torch-bin" "$M/all-minilm-l6-v2/tokenizer.json" <<'PY'
import json, os, sys, zipfile
seeds, torch_bin, tokenizer = sys.argv[1:]
def put(target, name, data):
    os.makedirs(f"{seeds}/{target}", exist_ok=True)
    open(f"{seeds}/{target}/{name}", "wb").write(data)
# The pickle of the zip checkpoint, alone (pickle, torch_zip_pickle) and the legacy file's start.
with zipfile.ZipFile(f"{torch_bin}/tiny-zip.bin") as z:
    pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
    put("pickle", "zip-data.pkl", z.read(pkl))
    put("torch_zip_pickle", "zip-data.pkl", z.read(pkl))
put("pickle", "legacy-start.pkl", open(f"{torch_bin}/tiny-legacy.bin", "rb").read()[:4096])
# A small tokenizer.json: MiniLM's, its vocabulary cut to the special tokens and 300 more.
if os.path.exists(tokenizer):
    t = json.load(open(tokenizer))
    vocab = t["model"]["vocab"]
    keep = {k: v for k, v in vocab.items() if v < 1000 and (k.startswith("[") or v >= 999 - 300)}
    t["model"]["vocab"] = {k: i for i, k in enumerate(sorted(keep, key=vocab.get))}
    t["added_tokens"] = [a for a in t.get("added_tokens", []) if a["content"] in t["model"]["vocab"]]
    for i, a in enumerate(t["added_tokens"]):
        a["id"] = t["model"]["vocab"][a["content"]]
    pp = t.get("post_processor") or {}
    for name in ("cls", "sep"):
        if name in pp:
            pp[name][1] = t["model"]["vocab"].get(pp[name][0], 0)
    put("tokenizer_json", "minilm-small.json", json.dumps(t).encode())
put("training_examples", "plain.tsv", b"a fine film\tpos\nso dull\tneg\n\"quoted\ttext\"\tpos\n")
put("training_examples", "rated.tsv", b"1\t2.5\tA fine film .\r\n2\t-1.25\tDull\r\n3\t0\tNeither\r\n")
put("training_examples", "examples.csv", b'text,label\n"a, fine film",pos\n"so ""dull""",neg\n')
PY

total_execs=0
crashes=0
for target in "${targets[@]}"; do
  corpus=tests/fuzz/corpus/$target
  work=$WORK/corpus/$target
  artifacts=$WORK/artifacts/$target
  mkdir -p "$corpus" "$work" "$artifacts"
  log "$target: ${seconds} s"
  started=$(mktemp) # inputs saved after this are this run's findings
  set +e
  cargo +nightly fuzz run --fuzz-dir tests/fuzz "$target" "$work" "$corpus" "$WORK/seeds/$target" -- \
    -max_total_time="$seconds" -timeout=1 -malloc_limit_mb=256 -rss_limit_mb=2048 -max_len=131072 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" >"$WORK/$target.log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)/\1/p' "$WORK/$target.log" | tail -1)
  found=$(find "$artifacts" -type f -newer "$started" | wc -l)
  rm -f "$started"
  coverage=$(grep -o 'cov: [0-9]*' "$WORK/$target.log" | tail -1 | awk '{print $2}')
  log "$target: ${execs:-0} execs, coverage ${coverage:-?} edges, exit $rc, $found saved crash/hang/oom input(s)"
  [ "$rc" = 0 ] || [ "$found" -gt 0 ] || { log "$target: libFuzzer failed without an artifact; see $WORK/$target.log"; tail -20 "$WORK/$target.log" >&2; found=1; }
  total_execs=$((total_execs + ${execs:-0}))
  crashes=$((crashes + found))
  # The saved corpus: a small set of inputs of at most 4 KiB that covers the edges the whole
  # corpus reaches (a set cover over edges, hit counts ignored), so that the replay in the test
  # command stays fast and the repository small; everything stays in $work for the next run.
  fresh=$WORK/merged/$target
  rm -rf "$fresh" && mkdir -p "$fresh"
  if cargo +nightly fuzz run --fuzz-dir tests/fuzz "$target" "$fresh" "$corpus" "$work" -- -set_cover_merge=1 \
      -use_counters=0 -use_value_profile=0 -max_len=131072 >"$WORK/$target.merge.log" 2>&1; then
    find "$fresh" -type f -size +4096c -delete
    rm -rf "$corpus" && mv "$fresh" "$corpus"
  else
    log "$target: corpus merge failed (see $WORK/$target.merge.log); saved corpus left as it was"
  fi
done
echo "fuzz: ${#targets[@]} targets, $total_execs execs, $crashes crashes"
