# jobs/deps.sh: install the Debian packages attnstat needs that are missing (sourced by
# jobs/demo.sh and tests/run.sh). Uses sudo when not root. Set AS_NO_INSTALL=1 to skip.
as_install_missing() {
    [ "${AS_NO_INSTALL:-0}" = 1 ] && return 0
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "attnstat: installing ${missing[*]}" >&2
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

AS_BUILD_DEPS=(build-essential cmake pkg-config libopenmpi-dev openmpi-bin libhdf5-openmpi-dev
               libopenblas-dev libyaml-dev libjansson-dev libplplot-dev plplot-driver-cairo)
AS_TEST_DEPS=(python3-h5py python3-numpy python3-pandas clang libclang-rt-14-dev jq strace poppler-utils chromium)

# as_build [BUILD_DIR] [cmake args...]: configure and build
as_build() {
    local dir=${1:-build}; shift || true
    cmake -S "$AS_ROOT" -B "$AS_ROOT/$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" > "$AS_ROOT/$dir.cmake.log" 2>&1 ||
        { cat "$AS_ROOT/$dir.cmake.log"; return 1; }
    cmake --build "$AS_ROOT/$dir" -j "$(nproc)" 2>&1 | grep -E "error|warning:" ; return "${PIPESTATUS[0]}"
}

# Open MPI refuses to run as root without these; more ranks than cores need oversubscription.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
