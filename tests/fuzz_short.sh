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
check_cmd "build the harnesses" cmake --build "$B" -j 2 --target fuzz_config fuzz_reader_npy fuzz_reader_pt fuzz_reader_safetensors
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
# fuzz_reader_hdf5 is not run here: its findings are inside libhdf5 1.10 (leaks and crashes on
# hostile files, not in attnstat's code); README "Fuzzing" says how to run it.
run_fuzzer fuzz_reader_pt "$FX/pt" "$FX/pt/synth" "$FX/pt/bad" "$FX/pt/regress"
run_fuzzer fuzz_reader_safetensors "$FX/readers"
finish
