#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS [TARGET ...]: runs every fuzz target (or the named ones) for SECONDS
# each with libFuzzer (cargo-fuzz, nightly), then keeps, of everything found, the inputs of at
# most 4 KiB that add coverage as the saved corpus (tests/fuzz/corpus/<target>/, replayed by
# `make test` through tests/rust/io/fuzz_replay.rs); the whole working corpus stays in target/fuzz/.
# Ends with one line: "fuzz: T targets, E execs, C crashes"; crashing inputs are left in
# target/fuzz/artifacts/<target>/ (fix the bug, then move the input to tests/fuzz/regressions/).
#
# Environment:
#   FUZZ_RUNS=N          stop each target after N executions (libFuzzer -runs), or at SECONDS,
#                        whichever comes first; SECONDS=0 means no time limit:
#                        `FUZZ_RUNS=10000000 bash tests/fuzz/run.sh 0` is the 10M-per-target campaign.
#   FUZZ_SANITIZER=S     none (default) or address (AddressSanitizer: also out-of-bounds reads in
#                        unsafe code and C, about 4x slower). Each builds in its own folder under
#                        tests/fuzz/target/ so that switching does not rebuild the other.
#
# Limits: a hang is an input that runs over 1 s (-timeout=1); one allocation larger than the input
# justifies is a crash: tests/fuzz/alloc_guard.rs (the fuzz binaries' global allocator) aborts on
# any single allocation over 64 bytes per input byte + 1 MiB (8 x 1032 per byte for hdf5:
# deflate), with or without ASan; -malloc_limit_mb=256 stays as ASan's own check, and
# -rss_limit_mb=2048 bounds the total. Inputs are at most the target's -max_len (max_len_of below).
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
runs=${FUZZ_RUNS:--1}
sanitizer=${FUZZ_SANITIZER:-none}
target_dir=tests/fuzz/target
[ "$sanitizer" = address ] || target_dir=tests/fuzz/target/$sanitizer

# max_len_of TARGET: the longest input libFuzzer makes for it. Every format's structure (headers,
# offsets, dtypes, pickle opcodes, JSON keys, vocab lines) fits in a few KiB and the seeds are that
# small, so a longer input only adds bytes to copy and scan; hdf5 keeps 64 KiB because its seeds,
# real ELMo files of 31 and 34 KB, hold their datasets at the end. (The saved corpus keeps inputs
# of at most 4 KiB either way.)
max_len_of() {
  case $1 in
    hdf5) echo 65536 ;;
    tokenizer_json | pytorch_bin) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

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
seed pytorch_bin $R/torch-bin/tiny-zip.bin $R/torch-bin/tiny-legacy.bin
seed hdf5 $M/elmo-fixture/elmo_token_embeddings.hdf5 $M/elmo-fixture/lm_embeddings_1.hdf5
seed config_json $R/random/*/config.json $M/*/config.json
seed vocab_txt $R/random/bert-random-ner/vocab.txt
seed elmo_options $M/elmo-fixture/options.json
python3 - "$WORK/seeds" "$R/torch-bin" "$M/all-minilm-l6-v2/tokenizer.json" "$R/random/bert-random/model.safetensors" <<'PY'
import json, os, struct, sys, zipfile
seeds, torch_bin, tokenizer, safetensors = sys.argv[1:]
def put(target, name, data):
    os.makedirs(f"{seeds}/{target}", exist_ok=True)
    open(f"{seeds}/{target}/{name}", "wb").write(data)
# The pickle of the zip checkpoint, alone (pickle, torch_zip_pickle) and the legacy file's start.
with zipfile.ZipFile(f"{torch_bin}/tiny-zip.bin") as z:
    pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
    put("pickle", "zip-data.pkl", z.read(pkl))
    put("torch_zip_pickle", "zip-data.pkl", z.read(pkl))
put("pickle", "legacy-start.pkl", open(f"{torch_bin}/tiny-legacy.bin", "rb").read()[:4096])
# Small safetensors files (a few bytes of data each): one tensor of every dtype the reader
# converts, and bert-random's tensor names with 2-element shapes.
def safetensors_file(tensors):
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + data
put("safetensors", "dtypes.safetensors", safetensors_file([
    ("f32", "F32", [2, 2], struct.pack("<4f", 1, -2, 0.5, 3e38)),
    ("f16", "F16", [3], struct.pack("<3H", 0x3C00, 0x7C00, 0x0001)),
    ("bf16", "BF16", [2], struct.pack("<2H", 0x3F80, 0xFF80)),
    ("f64", "F64", [1], struct.pack("<d", -1.5)),
    ("i64", "I64", [2], struct.pack("<2q", -1, 2**40)),
    ("i32", "I32", [1], struct.pack("<i", -7)),
    ("i16", "I16", [1], struct.pack("<h", 300)),
    ("i8", "I8", [2], struct.pack("<2b", -1, 1)),
    ("u8", "U8", [2], bytes([0, 255])),
    ("bool", "BOOL", [2], bytes([0, 1])),
    ("scalar", "F32", [], struct.pack("<f", 7)),
    ("empty", "F32", [0, 3], b""),
]))
if os.path.exists(safetensors):
    with open(safetensors, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        names = [k for k in json.loads(f.read(n)) if k != "__metadata__"]
    put("safetensors", "bert-names.safetensors", safetensors_file(
        [(name, "F32", [2], struct.pack("<2f", i, -i)) for i, name in enumerate(names[:24])]))
# A small tokenizer.json: MiniLM's, its vocabulary cut to the special tokens, punctuation and
# letters, some words and some "##" pieces (about 130 entries, real WordPiece structure).
if os.path.exists(tokenizer):
    t = json.load(open(tokenizer))
    vocab = t["model"]["vocab"]
    picked = [0, 100, 101, 102, 103] + list(range(999, 1060)) + list(range(1996, 2036)) + list(range(29000, 29030))
    keep = {k for k, v in vocab.items() if v in picked}
    t["model"]["vocab"] = {k: i for i, k in enumerate(sorted(keep, key=vocab.get))}
    new_id = t["model"]["vocab"]
    t["added_tokens"] = [a for a in t.get("added_tokens", []) if a["content"] in new_id]
    for a in t["added_tokens"]:
        a["id"] = new_id[a["content"]]
    pp = t.get("post_processor") or {}
    for name in ("cls", "sep"):
        if name in pp:
            pp[name][1] = new_id.get(pp[name][0], 0)
    for name, special in (pp.get("special_tokens") or {}).items():
        special["ids"] = [new_id.get(token, 0) for token in special.get("tokens", [name])]
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
  max_len=$(max_len_of "$target")
  limit="$seconds s"
  [ "$seconds" = 0 ] && limit="no time limit"
  log "$target: $limit, runs ${runs/#-1/unlimited}, max_len $max_len, sanitizer $sanitizer"
  started=$(mktemp) # inputs saved after this are this run's findings
  set +e
  cargo +nightly fuzz run --fuzz-dir tests/fuzz --sanitizer "$sanitizer" --target-dir "$target_dir" \
    "$target" "$work" "$corpus" "$WORK/seeds/$target" -- \
    -max_total_time="$seconds" -runs="$runs" -timeout=1 -malloc_limit_mb=256 -rss_limit_mb=2048 \
    -max_len="$max_len" -print_final_stats=1 -artifact_prefix="$artifacts/" >"$WORK/$target.log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)/\1/p' "$WORK/$target.log" | tail -1)
  found=$(find "$artifacts" -type f -newer "$started" | wc -l)
  rm -f "$started"
  coverage=$(grep -o 'cov: [0-9]*' "$WORK/$target.log" | tail -1 | awk '{print $2}' || true) # none: crashed while loading
  log "$target: ${execs:-0} execs, coverage ${coverage:-?} edges, exit $rc, $found saved crash/hang/oom input(s)"
  [ "$rc" = 0 ] || [ "$found" -gt 0 ] || { log "$target: libFuzzer failed without an artifact; see $WORK/$target.log"; tail -20 "$WORK/$target.log" >&2; found=1; }
  total_execs=$((total_execs + ${execs:-0}))
  crashes=$((crashes + found))
  # The saved corpus: a small set of inputs of at most 4 KiB that covers the edges the whole
  # corpus reaches (a set cover over edges, hit counts ignored), so that the replay in the test
  # command stays fast and the repository small; everything stays in $work for the next run.
  fresh=$WORK/merged/$target
  rm -rf "$fresh" && mkdir -p "$fresh"
  if cargo +nightly fuzz run --fuzz-dir tests/fuzz --sanitizer "$sanitizer" --target-dir "$target_dir" \
      "$target" "$fresh" "$corpus" "$work" -- -set_cover_merge=1 -use_counters=0 -use_value_profile=0 \
      -max_len="$max_len" >"$WORK/$target.merge.log" 2>&1; then
    find "$fresh" -type f -size +4096c -delete
    rm -rf "$corpus" && mv "$fresh" "$corpus"
  else
    log "$target: corpus merge failed (see $WORK/$target.merge.log); saved corpus left as it was"
  fi
done
echo "fuzz: ${#targets[@]} targets, $total_execs execs, $crashes crashes"
