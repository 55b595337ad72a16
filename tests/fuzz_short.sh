#!/bin/bash
# fuzz.short: builds the libFuzzer harnesses (clang, ASan + UBSan) and runs each for
# AS_FUZZ_SECONDS (default 15) from its committed seeds and regression inputs. Any crash, leak or
# sanitizer report fails. README "Fuzzing" says how to run them for longer.
source "$(dirname "$0")/lib.sh"
if ! command -v clang > /dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a > /dev/null 2>&1; then
    echo "SKIP: clang and libclang-rt-14-dev are needed for libFuzzer (tests/run.sh installs them)"
    exit 77
fi
B=${AS_FUZZ_BUILD:-$AS_SRC/build-fuzz}
check_cmd "configure the fuzz build" env CC=clang cmake -S "$AS_SRC" -B "$B" -DAS_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
check_cmd "build the harnesses" cmake --build "$B" -j 2 --target fuzz_config fuzz_reader_npy fuzz_reader_hdf5 fuzz_reader_pt fuzz_reader_safetensors
secs=${AS_FUZZ_SECONDS:-15}
F=$AS_SRC/tests/fuzz
FX=$AS_SRC/tests/fixtures
run_fuzzer() { # NAME SEEDS...
    local name=$1; shift
    mkdir -p "$TMP/corpus-$name"
    ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1 \
        "$B/tests/fuzz/$name" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$TMP/$name-" \
        "$TMP/corpus-$name" "$@" > "$TMP/$name.log" 2>&1
    local rc=$? runs
    runs=$(grep -m1 "stat::number_of_executed_units" "$TMP/$name.log" | awk '{print $2}')
    if [ $rc -eq 0 ]; then ok "$name: ${runs:-?} runs in ${secs}s, no finding"; else
        fail "$name: finding (exit $rc); input saved as $(ls "$TMP/$name-"* 2>/dev/null | head -1)"
        grep -E "ERROR|SUMMARY|bad message|without a proper message" "$TMP/$name.log" | head -5 | sed 's/^/    /'
    fi
}
run_fuzzer fuzz_config "$F/corpus_config" "$AS_SRC/config"
run_fuzzer fuzz_reader_npy "$F/corpus_npy"
# HDF5: libhdf5 1.10 itself crashes and leaks on some hostile files. Fork mode goes on past every
# finding; each one is replayed and fails the test only when its first frame (past libc and the
# sanitizer's interceptors) is attnstat's own code. Findings inside libhdf5 are counted.
hdf5_fuzz() {
    local name=fuzz_reader_hdf5 art="$TMP/hdf5-art"
    mkdir -p "$TMP/corpus-$name" "$art"
    (cd "$art" && ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=0 \
        "$B/tests/fuzz/$name" -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 -timeout=5 -rss_limit_mb=2048 \
        -max_total_time="$secs" -artifact_prefix="$art/" "$TMP/corpus-$name" "$F/corpus_hdf5" > "$TMP/$name.log" 2>&1)
    local ours=0 upstream=0
    for f in "$art"/crash-* "$art"/oom-* "$art"/timeout-*; do
        [ -e "$f" ] || continue
        ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=0 "$B/tests/fuzz/$name" "$f" > "$f.log" 2>&1
        frame=$(grep -E "^ +#[0-9]+ " "$f.log" | grep -vE "in (__interceptor_|__asan|__sanitizer|__ubsan|__mem|mem(cpy|move|set|cmp)|str[a-z]*|malloc|calloc|realloc|free|abort|raise|__pthread|__GI_|fuzzer::)|libc\.so|libclang_rt|/sanitizer_common/|compiler-rt" | head -1)
        if echo "$frame" | grep -qE "libhdf5|H5[A-Z]"; then upstream=$((upstream + 1)); else
            ours=$((ours + 1)); echo "    finding in attnstat: $f: $frame"; fi
    done
    [ $ours -eq 0 ] && ok "$name: ${secs}s in fork mode, $upstream finding(s) inside libhdf5, none in attnstat" \
                    || fail "$name: $ours finding(s) in attnstat's code"
}
hdf5_fuzz
run_fuzzer fuzz_reader_pt "$FX/pt" "$FX/pt/synth" "$FX/pt/bad" "$FX/pt/regress"
run_fuzzer fuzz_reader_safetensors "$FX/readers"
finish
