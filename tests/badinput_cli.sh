#!/bin/bash
# badinput.cli: every input error attnstat detects at the command line: the one-line message, the
# documented exit code, and no results file claiming to be complete. Cases run under mpirun -np 2
# so a failing rank must not hang the other. README "Bad-input catalogue" lists the same cases.
source "$(dirname "$0")/lib.sh"
D=$TMP/data
mkdir -p "$D"
"$AS_PY" - "$D" <<'PY'
import sys, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(0)
good = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
np.save(f"{d}/good.npy", good)
np.save(f"{d}/three_d.npy", good[0])
np.save(f"{d}/nonsquare.npy", rng.standard_normal((2, 3, 8, 5)).astype(np.float32))
np.save(f"{d}/ints.npy", np.arange(16, dtype=np.int32).reshape(1, 1, 4, 4))
np.save(f"{d}/bigendian.npy", good.astype(">f4"))
nan = good.copy(); nan[1, 2, 5, 3] = np.nan; nan[1, 2, 6, 6] = np.inf
np.save(f"{d}/nan.npy", nan)
raw = open(f"{d}/good.npy", "rb").read()
open(f"{d}/truncated.npy", "wb").write(raw[:len(raw) // 2])
open(f"{d}/badmagic.npy", "wb").write(b"NOTNUMPY" + raw[8:])
open(f"{d}/hugeheader.npy", "wb").write(raw[:8] + b"\xff\xff" + raw[10:])
open(f"{d}/garbage.npy", "wb").write(b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'  \n")
empty = np.zeros((0, 3, 8, 8), np.float32); np.save(f"{d}/empty.npy", empty)
PY

# case NAME EXPECTED_EXIT 'MESSAGE FRAGMENT' CONFIG_BODY [extra run args]
case_run() {
    local name=$1 code=$2 msg=$3 body=$4; shift 4
    printf '%s' "$body" > "$TMP/$name.yaml"
    rm -f "$TMP/$name.h5"
    run_np 2 run "$TMP/$name.yaml" -o "$TMP/$name.h5" --quiet "$@" > "$TMP/$name.out" 2>&1
    local rc=$?
    local line
    line=$(grep -m1 'attnstat: error' "$TMP/$name.out")
    if [ "$rc" -ne "$code" ]; then fail "$name: exit $rc, want $code: $line"; return; fi
    if ! grep -qF -- "$msg" "$TMP/$name.out"; then fail "$name: message lacks '$msg': $line"; return; fi
    if [ -e "$TMP/$name.h5" ] && "$AS_PY" -c "import h5py,sys; sys.exit(0 if h5py.File('$TMP/$name.h5').attrs.get('complete') == 1 else 1)" 2>/dev/null; then
        fail "$name: a results file claims to be complete"; return
    fi
    ok "$name (exit $rc): $line"
}

model() { # model NAME FILE -> a config body reading FILE as qk_mean
    printf 'output: out.h5\nmodels:\n  - name: %s\n    dir: %s\n    tensors: {qk_mean: %s}\nstages:\n  histsim: {}\n' "$1" "$D" "$2"
}

case_run yaml_syntax 3 'yaml_syntax.yaml:3:1: invalid YAML' $'output: a.h5\nmodels: [\n'
case_run yaml_unknown_key 3 "yaml_unknown_key.yaml:3:15: models[0]: unknown key 'dri'" $'output: a.h5\nmodels:\n  - {name: a, dri: x}\nstages: {histsim: {}}\n'
case_run yaml_wrong_type 3 "yaml_wrong_type.yaml:3:45: model 'a' synthetic.heads: expected an integer, found 'many'" $'output: a.h5\nmodels:\n  - {name: a, synthetic: {layers: 2, heads: many, seq_len: 4}}\nstages: {histsim: {}}\n'
case_run yaml_missing_models 3 "missing key 'models'" $'output: a.h5\nstages: {histsim: {}}\n'
case_run yaml_unknown_stage 3 "unknown stage 'histsm'" $'output: a.h5\nmodels:\n  - {name: a, synthetic: {layers: 2, heads: 2, seq_len: 4}}\nstages: {histsm: {}}\n'
case_run yaml_duplicate_model 3 "duplicate model name 'a'" $'output: a.h5\nmodels:\n  - {name: a, synthetic: {layers: 2, heads: 2, seq_len: 4}}\n  - {name: a, synthetic: {layers: 2, heads: 2, seq_len: 4}}\nstages: {histsim: {}}\n'
case_run yaml_bad_option 3 "stages.histsim.non_finite: 'ignore' is not one of: error, skip" $'output: a.h5\nmodels:\n  - {name: a, synthetic: {layers: 2, heads: 2, seq_len: 4}}\nstages: {histsim: {non_finite: ignore}}\n'
case_run missing_dir 4 "model 'm': directory '/nonexistent/attnstat' does not exist" $'output: a.h5\nmodels:\n  - {name: m, dir: /nonexistent/attnstat}\nstages: {histsim: {}}\n'
case_run missing_tensor 4 "model 'm': no tensor 'qk_mean' in '$D/empty_dir'" "$(mkdir -p "$D/empty_dir"; printf 'output: a.h5\nmodels:\n  - {name: m, dir: %s/empty_dir}\nstages: {histsim: {}}\n' "$D")"
case_run missing_file 4 "model 'm': tensor 'qk_mean': no file '$D/nope.npy'" "$(model m nope.npy)"
case_run wrong_rank 4 "model 'm' stage histsim: tensor 'qk_mean' must be (layers, heads, seq_len, seq_len), found 3 dims" "$(model m three_d.npy)"
case_run nonsquare 4 "must be (layers, heads, seq_len, seq_len), found 4 dims (2, 3, 8, 5)" "$(model m nonsquare.npy)"
case_run empty_tensor 4 "tensor 'qk_mean' is empty (0, 3, 8, 8)" "$(model m empty.npy)"
case_run int_dtype 4 "npy dtype '<i4' is not supported" "$(model m ints.npy)"
case_run big_endian 4 "npy dtype '>f4' is not little-endian float" "$(model m bigendian.npy)"
case_run truncated 4 "truncated.npy': data needs 1536 bytes but only" "$(model m truncated.npy)"
case_run bad_magic 4 "badmagic.npy': not a .npy file (bad magic)" "$(model m badmagic.npy)"
case_run header_too_long 4 ".npy header length 65535 exceeds the file" "$(model m hugeheader.npy)"
case_run header_garbage 4 "npy header" "$(model m garbage.npy)"
case_run non_finite 4 "model 'm' layer 1 head 2: 2 non-finite values in 'qk_mean'" "$(model m nan.npy)"
# other formats: hostile or broken files, one line each, exit 4
PT=$AS_SRC/tests/fixtures/pt
RD=$AS_SRC/tests/fixtures/readers
modelf() { # modelf NAME FILE [KEY] -> a config reading FILE (absolute) as qk_mean
    printf 'output: out.h5\nmodels:\n  - name: %s\n    dir: %s\n    tensors: {qk_mean: {file: %s, key: "%s"}}\nstages:\n  histsim: {}\n' "$1" "$D" "$2" "${3:-}"
}
case_run pt_global_os_system 4 "pickle global 'os.system' is not allowed" "$(modelf m "$PT/bad/global_os_system.pt")"
case_run pt_legacy_format 4 "legacy (pre-1.6) torch.save format" "$(modelf m "$PT/bad/legacy_format.pt")"
case_run pt_truncated_zip 4 "truncated_zip.pt'" "$(modelf m "$PT/bad/truncated_zip.pt")"
case_run pt_storage_too_small 4 "numel_exceeds_record.pt'" "$(modelf m "$PT/bad/numel_exceeds_record.pt")"
case_run pt_int_tensor 4 "dtype int64" "$(modelf m "$PT/dict_two_tensors.pt" bias)"
case_run pt_missing_key 4 "no tensor 'nope'" "$(modelf m "$PT/dict_two_tensors.pt" nope)"
case_run st_header_too_long 4 "bad_hdrlen_gt_file.safetensors'" "$(modelf m "$RD/bad_hdrlen_gt_file.safetensors")"
case_run st_overlap 4 "overlap" "$(modelf m "$RD/bad_overlap.safetensors")"
case_run st_duplicate_name 4 "bad_duplicate.safetensors'" "$(modelf m "$RD/bad_duplicate.safetensors")"
case_run st_wrong_dtype 4 "bad_bad_dtype.safetensors'" "$(modelf m "$RD/bad_bad_dtype.safetensors")"
case_run st_offsets_beyond 4 "bad_offsets_beyond.safetensors'" "$(modelf m "$RD/bad_offsets_beyond.safetensors")"
case_run h5_integer_dataset 4 "integer" "$(modelf m "$RD/bad_int.h5")"
case_run h5_not_hdf5 4 "bad_not_hdf5.h5'" "$(modelf m "$RD/bad_not_hdf5.h5")"
# shapes across inputs and what a stage cannot know
"$AS_PY" -c "import numpy as np; np.save('$D/attn.npy', np.full((1,2,2,4,4), .25, np.float32)); np.save('$D/grad.npy', np.zeros((1,2,2,4,3), np.float32)); np.save('$D/q.npy', np.zeros((2,5,12), np.float32))"
case_run jacobian_shape_mismatch 4 "attn" $'output: a.h5\nmodels:\n  - {name: m, dir: '"$D"$'}\nstages:\n  jacobian: {}\n'
case_run activations_heads_unknown 3 "the head count is unknown" $'output: a.h5\nmodels:\n  - {name: m, dir: '"$D"$', tensors: {q_acts: q.npy, k_acts: q.npy, v_acts: q.npy}}\nstages:\n  activations: {}\n'
case_run activations_heads_not_dividing 3 "5 heads do not divide the width 12" $'output: a.h5\nmodels:\n  - {name: m, heads: 5, dir: '"$D"$', tensors: {q_acts: q.npy, k_acts: q.npy, v_acts: q.npy}}\nstages:\n  activations: {}\n'
case_run sweep_missing 3 "sweep: 2 combinations are missing" $'output: a.h5\nsweep:\n  vars: {d: [x, y]}\n  model: {name: "m{d}", dir: "/nonexistent/{d}"}\nstages: {histsim: {}}\n'
case_run unknown_model_selected 3 "--models names 'zz'" "$(model m good.npy)" --models zz
case_run output_unwritable 5 "cannot create the folder of results file '/proc/attnstat/out.h5'" "$(model m good.npy)" -o /proc/attnstat/out.h5

# srun without the MPI plugin: every task a 1-rank job
printf '%s' "$(model m good.npy)" > "$TMP/np.yaml"
ATTNSTAT_EXPECT_NP=3 run_np 2 run "$TMP/np.yaml" --quiet > "$TMP/np.out" 2>&1; rc=$?
if [ $rc -eq 2 ] && grep -qF "srun needs --mpi=pmix" "$TMP/np.out"; then ok "mpi_size_mismatch (exit 2)"; else fail "mpi_size_mismatch: exit $rc"; fi

# usage errors: exit 2, no MPI needed
usage_case() {
    local name=$1 msg=$2; shift 2
    "$ATTNSTAT" "$@" > "$TMP/$name.out" 2>&1
    local rc=$?
    if [ $rc -eq 2 ] && grep -qF -- "$msg" "$TMP/$name.out"; then ok "$name (exit 2)"; else fail "$name: exit $rc: $(head -1 "$TMP/$name.out")"; fi
}
usage_case usage_no_command "missing command"
usage_case usage_unknown_command "unknown command 'frobnicate'" frobnicate
usage_case usage_run_no_config "run needs a CONFIG file" run
usage_case usage_unknown_option "unknown option '--fast' for run" run x.yaml --fast
"$ATTNSTAT" run /nonexistent/c.yaml > "$TMP/nc.out" 2>&1; rc=$?
if [ $rc -eq 3 ] && grep -qF "cannot open config '/nonexistent/c.yaml'" "$TMP/nc.out"; then ok "missing_config (exit 3)"; else fail "missing_config: exit $rc"; fi
# the good file really works, so the cases above fail for the reason they claim
model m good.npy > "$TMP/good.yaml"
check_cmd "control: the good tensor runs" run_np 2 run "$TMP/good.yaml" -o "$TMP/good.h5" --quiet
finish
