#!/usr/bin/env bash
# rloop's tests on every CPython version it supports, one command:
#
#   bash tools/matrix.sh [--no-conformance] [--record LOOP]... [VERSION...]
#
# VERSION is one of 3.11 3.12 3.13 3.14 3.15 (default: all of them). For each
# version that is available here it makes a venv (outside the repo), installs
# rloop into it from this working tree with the test dependencies, then runs
# pytest and `tools/conformance.py --check` for RLoop and TokioLoop, and at the
# end prints one summary row per version. Exit status 1 if any version failed
# (a version that is not available here is skipped with a notice, not failed).
#
# Where each Python comes from:
#   3.11       the host's python3 ($PYTHON if set), else python3.11 or pyenv
#   3.12       pyenv ($PYENV_ROOT/versions/3.12.*); none: skipped with a notice
#   3.13       pyenv; none: a Debian trixie root
#   3.14 3.15  a Debian sid root
# A Debian root is made once with debootstrap from the mirror that the host's
# own apt sources name, kept in the cache directory and reused (a marker file
# says it is complete). rloop is built and tested inside it with chroot, with
# the host's ~/.cargo and ~/.rustup and this repo (read-only) bind-mounted;
# the run happens in its own mount namespace, so that nobody else on the
# machine sees its mounts (or has theirs undone by it) and they vanish with
# the run however it ends; every mount is also undone in order by a trap.
#
# Options:
#   --no-conformance   pytest only
#   --record LOOP      run `conformance.py --record --loop LOOP` (asyncio,
#                      uvloop, rloop or tokio) on every version, writing its
#                      numbers into tools/conformance.json; a recorded rloop
#                      loop is recorded instead of checked. Repeatable.
#
# Environment:
#   RLOOP_ROOTS           cache directory: roots, venvs, build dirs, logs
#                         (default /var/tmp/rloop-roots)
#   CARGO_PROFILE_RELEASE_*  passed on to every build (roots included); the
#                         builds use the project's release profile, as shipped:
#                         measured on 2 cores, LTO off and 16 codegen units
#                         saved nothing cold (22-28 s either way) and 1-2 s of
#                         a 5-7 s rebuild after an edit, so it is not the default
#   RLOOP_MATRIX_TIMEOUT  per-module time limit of the conformance runs, in
#                         seconds (default 90: 5x the slowest module; a hang costs this)
#   RLOOP_MATRIX_PYTEST_TIMEOUT  time limit of one pytest run (default 1200)
#
# shellcheck disable=SC2016  # the $VARs of the scripts run_env runs expand there
set -euo pipefail

# A private mount namespace for the whole run (see above); without one (not
# root, or a sandbox that refuses it) the mounts are made in the host's.
if [ -z "${RLOOP_MATRIX_IN_NS:-}" ] && [ "$(id -u)" = 0 ] &&
    unshare --mount --propagation private true 2>/dev/null; then
    RLOOP_MATRIX_IN_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi
[ -n "${RLOOP_MATRIX_IN_NS:-}" ] ||
    echo "NOTICE: no private mount namespace (unshare): a root's mounts are visible machine-wide"

cd "$(dirname "$0")/.."
REPO=$(pwd)

ALL_VERSIONS=(3.11 3.12 3.13 3.14 3.15)
ROOTS=${RLOOP_ROOTS:-/var/tmp/rloop-roots}
CONF_TIMEOUT=${RLOOP_MATRIX_TIMEOUT:-90}
PYTEST_TIMEOUT=${RLOOP_MATRIX_PYTEST_TIMEOUT:-1200}
CARGO_DIR=${CARGO_HOME:-$HOME/.cargo}
RUSTUP_DIR=${RUSTUP_HOME:-$HOME/.rustup}
PYENV_DIR=${PYENV_ROOT:-$HOME/.pyenv}
# Packages a root needs besides Python: cc for the Rust linker, certificates
# for pip and cargo, netbase for /etc/services and /etc/protocols.
ROOT_BASE_PACKAGES=(gcc libc6-dev ca-certificates netbase)
# Paths inside a root (the root itself lives in the cache directory).
IN_REPO=/src
IN_CACHE=/var/tmp/rloop-matrix

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

CONFORMANCE=1
RECORD=()
VERSIONS=()
while [ $# -gt 0 ]; do
    case $1 in
    --no-conformance) CONFORMANCE=0 ;;
    --record)
        [ $# -ge 2 ] || { echo "--record needs a loop name" >&2; exit 2; }
        case $2 in asyncio | uvloop | rloop | tokio) RECORD+=("$2") ;;
        *) echo "--record: unknown loop $2" >&2; exit 2 ;; esac
        shift ;;
    -h | --help) usage; exit 0 ;;
    3.*)
        [[ " ${ALL_VERSIONS[*]} " == *" $1 "* ]] || {
            echo "unsupported version $1 (supported: ${ALL_VERSIONS[*]})" >&2; exit 2; }
        VERSIONS+=("$1") ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=("${ALL_VERSIONS[@]}")
case $ROOTS in
/*) ;;
*) echo "RLOOP_ROOTS must be an absolute path" >&2; exit 2 ;;
esac
if [[ $ROOTS =~ [[:space:]] || $ROOTS == "$REPO" || $ROOTS == "$REPO"/* ]]; then
    # Whitespace would break the /proc/mounts parsing below; inside the repo
    # the roots would be read by git, ruff and pytest.
    echo "RLOOP_ROOTS must be outside the repo and without whitespace" >&2
    exit 2
fi
# Cargo profile overrides from the environment, for the roots' clean one.
mapfile -t PROFILE_VARS < <(env | grep '^CARGO_PROFILE_RELEASE_' || true)

has_record() {
    local loop
    for loop in "${RECORD[@]+"${RECORD[@]}"}"; do [ "$loop" = "$1" ] && return 0; done
    return 1
}

mkdir -p "$ROOTS"
# One matrix run at a time: runs share the roots (and their mounts), and the
# machine is too small for two builds at once.
exec 9>"$ROOTS/.lock"
if ! flock -n 9; then
    echo "== another matrix run holds $ROOTS/.lock; waiting for it"
    flock 9
fi

# ------------------------------------------------------------------ mounts

MOUNTED=() # mount points made by this run, in mount order

# Every mount point at or under $1, deepest first (from /proc/mounts).
mounts_under() {
    awk -v p="$1" '$2 == p || index($2, p "/") == 1 { print $2 }' /proc/mounts | sort -r
}

# Unmount $1 (a mount point); a busy one (a leftover process of a test still
# inside) is detached lazily so the run can go on.
unmount_one() {
    umount "$1" 2>/dev/null && return 0
    echo "   notice: $1 is busy, detaching it (umount -l)" >&2
    umount -l "$1" 2>/dev/null
}

# Undo this run's mounts under $1 (all of them without $1), newest first.
# Only this run's: others may be using the same root at the same time (and
# outside a private namespace, unmounting theirs would pull it from them).
unmount_mine() {
    local i m kept=() rc=0
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        m=${MOUNTED[i]}
        if [ -z "${1:-}" ] || [[ $m == "$1" || $m == "$1"/* ]]; then
            unmount_one "$m" || { echo "WARNING: could not unmount $m" >&2; rc=1; }
        else
            kept=("$m" "${kept[@]+"${kept[@]}"}")
        fi
    done
    MOUNTED=("${kept[@]+"${kept[@]}"}")
    return $rc
}

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    unmount_mine "" || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

do_mount() { # do_mount TARGET MOUNT-ARGS...: mount and remember it for cleanup
    local target=$1
    shift
    mkdir -p "$target"
    mount "$@" "$target" || return 1
    MOUNTED+=("$target")
}

# What apt and dpkg need inside a root: /proc and /dev.
mount_system() {
    local r=$1
    # A fresh proc instance; some sandboxes refuse that, then the host's.
    do_mount "$r/proc" -t proc proc || do_mount "$r/proc" --bind /proc || return 1
    do_mount "$r/dev" --bind /dev || return 1
    do_mount "$r/dev/pts" --bind /dev/pts || return 1
    # Python's multiprocessing (used by test_asyncio) needs a writable /dev/shm.
    do_mount "$r/dev/shm" -t tmpfs -o mode=1777 tmpfs || return 1
}

# Everything a build and test run needs inside a root.
mount_for_build() {
    local r=$1 repo_mode=$2
    mount_system "$r" || return 1
    do_mount "$r/root/.cargo" --bind "$CARGO_DIR" || return 1
    do_mount "$r/root/.rustup" --bind "$RUSTUP_DIR" || return 1
    do_mount "$r$IN_REPO" --bind "$REPO" || return 1
    if [ "$repo_mode" = ro ]; then
        # Read-only: nothing built in the root can land in the working tree.
        mount -o remount,bind,ro "$r$IN_REPO" || return 1
    fi
}

# Files the root takes from the host at every run: name resolution, and the
# host's certificate bundle (it may hold a CA the root's own bundle lacks).
refresh_root_files() {
    local r=$1
    cp /etc/resolv.conf "$r/etc/resolv.conf" || return 1
    cp /etc/hosts "$r/etc/hosts" || return 1
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        mkdir -p "$r/etc/ssl/certs"
        cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/ca-certificates.crt" || return 1
    fi
}

# ------------------------------------------------------------------ Debian roots

# The host's Debian mirror: the first URIs: of a deb822 stanza for a plain
# suite (not -security), else the first `deb` line of sources.list. Read at
# run time so that no mirror is written into the repo.
host_mirror() {
    local f uri=""
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk '
            function flush() { if (uri != "" && plain && !found) { print uri; found = 1 } uri = ""; plain = 0 }
            /^[[:space:]]*$/ { flush(); next }
            tolower($1) == "uris:" { uri = $2 }
            tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i !~ /-security$/) plain = 1 }
            END { flush() }' "$f")
        [ -n "$uri" ] && break
    done
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
    fi
    [ -n "$uri" ] || return 1
    echo "$uri"
}

ensure_debootstrap() {
    command -v debootstrap >/dev/null && return 0
    echo "   installing debootstrap (apt-get)"
    apt-get install -y debootstrap >/dev/null 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y debootstrap >/dev/null; }
}

root_apt() { # root_apt ROOT ARGS...: apt-get in the root (mounted), non-interactive
    local r=$1
    shift
    # sid's Release files can be older than their Valid-Until on a snapshot
    # mirror; the option is also in the root's apt.conf.d (see ensure_root).
    chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        apt-get -o Acquire::Check-Valid-Until=false -q "$@"
}

# Make the Debian root for suite $1 unless a complete one is cached.
ensure_root() {
    local suite=$1 r=$ROOTS/$1 mirror log m
    [ -f "$r/.rloop-root-complete" ] && return 0
    log=$ROOTS/logs/root-$suite.log
    mkdir -p "$ROOTS/logs"
    echo "   making the Debian $suite root in $r (log: $log)"
    if [ -e "$r" ]; then
        # An incomplete root from an interrupted run. Never delete through a
        # live bind mount (it would delete the host's ~/.cargo or the repo;
        # --one-file-system does not see a bind mount of the same disk). In
        # our private namespace the mounts are copies and can go.
        if [ -n "${RLOOP_MATRIX_IN_NS:-}" ]; then
            for m in $(mounts_under "$r"); do umount -l "$m" || true; done
        fi
        if [ -n "$(mounts_under "$r")" ]; then
            echo "   $r (incomplete) has mounts; unmount them or delete it by hand" >&2
            return 1
        fi
        rm -rf --one-file-system "$r"
    fi
    ensure_debootstrap || { echo "   could not install debootstrap" >&2; return 1; }
    mirror=$(host_mirror) || { echo "   no Debian mirror found in the host's apt sources" >&2; return 1; }
    debootstrap --variant=minbase "$suite" "$r" "$mirror" >"$log" 2>&1 ||
        { echo "   debootstrap failed; last lines of $log:" >&2; tail -5 "$log" >&2; return 1; }
    mkdir -p "$r/etc/apt/apt.conf.d"
    printf '%s\n' 'Acquire::Check-Valid-Until "false";' 'APT::Install-Recommends "false";' \
        >"$r/etc/apt/apt.conf.d/99rloop-matrix"
    refresh_root_files "$r" || return 1
    mount_system "$r" || return 1
    if ! { root_apt "$r" update && root_apt "$r" install -y "${ROOT_BASE_PACKAGES[@]}"; } >>"$log" 2>&1; then
        echo "   apt-get failed in the $suite root; last lines of $log:" >&2
        tail -5 "$log" >&2
        unmount_mine "$r"
        return 1
    fi
    unmount_mine "$r" || return 1
    date -u +%Y-%m-%dT%H:%M:%SZ >"$r/.rloop-root-complete"
}

# Install Python $2 into the root of suite $1 unless done before. Returns 3 if
# the suite has no such Python.
ensure_root_python() {
    local suite=$1 v=$2 r=$ROOTS/$1 log
    local pkgs=("python$v" "python$v-dev" "python$v-venv" "libpython$v-testsuite")
    [ -f "$r/.rloop-python$v-complete" ] && return 0
    log=$ROOTS/logs/root-$suite-python$v.log
    echo "   installing Python $v into the $suite root (log: $log)"
    refresh_root_files "$r" || return 1
    mount_system "$r" || return 1
    # A fresh package list: the one from when the root was made may name
    # package versions the mirror no longer has.
    if ! root_apt "$r" update >"$log" 2>&1; then
        unmount_mine "$r"
        echo "   apt-get update failed in the $suite root; see $log" >&2
        return 1
    fi
    if ! root_apt "$r" install -y "${pkgs[@]}" >>"$log" 2>&1; then
        unmount_mine "$r"
        if grep -q "Unable to locate package\|has no installation candidate" "$log"; then
            return 3
        fi
        echo "   apt-get install failed in the $suite root; last lines of $log:" >&2
        tail -5 "$log" >&2
        return 1
    fi
    unmount_mine "$r" || return 1
    # Copied after apt-get: the ca-certificates package rewrites the bundle.
    refresh_root_files "$r" || return 1
    date -u +%Y-%m-%dT%H:%M:%SZ >"$r/.rloop-python$v-complete"
}

# ------------------------------------------------------------------ Pythons

# Does interpreter $1 (a host path) run, have version $2 and the test package?
usable_python() {
    "$1" -c "
import importlib.util, sys
ok = '%d.%d' % sys.version_info[:2] == '$2' and importlib.util.find_spec('test.test_asyncio')
sys.exit(0 if ok else 1)" 2>/dev/null
}

# Print "WHERE PATH" of a usable host interpreter for version $1 (WHERE:
# host or pyenv), or fail.
host_python() {
    local v=$1 cand exe
    local cands=()
    if [ "$v" = 3.11 ]; then cands+=("${PYTHON:-python3}"); fi
    cands+=("python$v")
    # pyenv builds of this minor version, the newest first.
    local builds=("$PYENV_DIR/versions/$v".*)
    for cand in $(printf '%s\n' "${builds[@]}" | sort -rV); do
        cands+=("$cand/bin/python$v")
    done
    for cand in "${cands[@]}"; do
        cand=$(command -v "$cand" 2>/dev/null) || continue
        if usable_python "$cand" "$v"; then
            # pyenv's shims pick the interpreter at run time; pin the real one.
            exe=$("$cand" -c 'import sys; print(sys.executable)')
            if [[ $cand == "$PYENV_DIR"/versions/* ]]; then echo "pyenv $exe"; else echo "host $exe"; fi
            return 0
        fi
    done
    return 1
}

# ------------------------------------------------------------------ per version

# State of the version being run.
WHERE="" ROOT="" PY_IN="" VENV_IN="" TARGET_IN="" LOG_IN="" LOG_HOST="" REPO_IN=""

# run_env SCRIPT: run a bash script in the current version's environment (the
# host, or chroot into its root), with `set -euo pipefail` and the variables.
run_env() {
    local vars=(
        "PY=$PY_IN" "VENV=$VENV_IN" "REPO=$REPO_IN" "LOGS=$LOG_IN"
        "CARGO_TARGET_DIR=$TARGET_IN" "PYTHONDONTWRITEBYTECODE=1"
        "PIP_DISABLE_PIP_VERSION_CHECK=1" "CONF_TIMEOUT=$CONF_TIMEOUT" "PYTEST_TIMEOUT=$PYTEST_TIMEOUT"
    )
    vars+=("${PROFILE_VARS[@]+"${PROFILE_VARS[@]}"}")
    if [ -z "$ROOT" ]; then
        # The host's environment, minus what would point Python elsewhere
        # (PYTHONPATH=python would test the source tree, not the install).
        # The venv's bin first, as if activated: maturin's build backend runs
        # the `maturin` it finds on PATH.
        env -u PYTHONPATH -u PYTHONHOME -u VIRTUAL_ENV "${vars[@]}" PATH="$VENV_IN/bin:$PATH" \
            bash -c "set -euo pipefail; cd \"\$REPO\"; $1"
    else
        # A clean environment: nothing of the host's leaks in but the above.
        chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
            PATH="$VENV_IN/bin:/root/.cargo/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" \
            CARGO_HOME=/root/.cargo RUSTUP_HOME=/root/.rustup \
            PIP_CERT=/etc/ssl/certs/ca-certificates.crt "${vars[@]}" \
            /bin/bash -c "set -euo pipefail; cd \"\$REPO\"; $1"
    fi
}

# The venv, with the test dependencies (uvloop apart: it may have no wheel for
# a new Python, and then its test cases skip) and maturin for the build.
SETUP_VENV=$(cat <<'EOF'
want=$("$PY" -c 'import sys; print(sys.version)')
have=$("$VENV/bin/python" -c 'import sys; print(sys.version)' 2>/dev/null || true)
if [ "$want" != "$have" ]; then
    # None yet, or made by another build of this Python: a fresh one.
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
fi
mapfile -t deps < <("$VENV/bin/python" - <<'PY'
import re
import tomllib

with open("pyproject.toml", "rb") as f:
    extras = tomllib.load(f)["project"]["optional-dependencies"]
for req in extras["test"]:
    if re.split(r"[^A-Za-z0-9_.-]", req)[0].lower() != "uvloop":
        print(req)
PY
)
"$VENV/bin/python" -m pip install -q maturin "${deps[@]}"
# Wheels only: building uvloop from source is slow and is not what is tested.
if ! "$VENV/bin/python" -m pip install -q --only-binary=:all: uvloop; then
    echo "NOTICE: uvloop did not install; its test cases will skip"
fi
EOF
)

# The extension, built in this environment (own target dir per version: the
# host and the roots link against different glibc versions).
BUILD='"$VENV/bin/python" -m pip install --no-build-isolation --no-deps --force-reinstall -v .'

# From the repo root, where python/ is not on sys.path: the install is tested.
PYTEST='timeout -k 10 "$PYTEST_TIMEOUT" "$VENV/bin/python" -m pytest tests -q -p no:cacheprovider'

# conformance MODE LOOP: conformance.py --MODE --loop LOOP.
conformance_script() {
    echo "\"\$VENV/bin/python\" tools/conformance.py --$1 --loop $2 --timeout \"\$CONF_TIMEOUT\" --log-dir \"\$LOGS/conformance-$2\""
}

declare -A R_PY R_WHERE R_BUILD R_PYTEST R_CONF R_TIME R_STATUS R_STAGES
FAILED=0

now() { date +%s; }

# The compiler's error messages in build log $1 (each up to its blank line),
# else the log's last lines.
build_errors() {
    local errors
    # rustc's errors, not pip's own closing "error: subprocess-exited-with-error".
    errors=$(awk '/^[[:space:]]*error(\[E[0-9]+\])?:/ && !/subprocess-exited|metadata-generation/ { on = 1 }
        on { print } on && /^[[:space:]]*$/ { on = 0 }' "$1" | head -80)
    if [ -n "$errors" ]; then echo "$errors"; else tail -30 "$1"; fi
}

# Summarise a pytest log: its final counts line.
pytest_summary() {
    local line
    line=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error|skipped)|^=+ .*( in [0-9.]+s)' "$1" | tail -1 |
        sed -E 's/^=+ //; s/ =+$//; s/ in [0-9.]+s.*//')
    echo "${line:-no summary}"
}

# Summarise a conformance log: passed/run, modules not ok, check outcome.
conformance_summary() {
    local log=$1 total bad check
    total=$(awk '$1 == "TOTAL" { print $3 "/" $2 }' "$log" | tail -1)
    bad=$(grep -cE '^  test_[a-z0-9_]+ +[0-9]+/[0-9]+ +passed +[0-9.]+s +(timeout|crashed|import-error|substitution-failed|no-header)' "$log" || true)
    bad=${bad:-0}
    if grep -q "check: FAILED: nothing recorded" "$log"; then check="no record"
    elif grep -q "^check: FAILED" "$log"; then check="check FAILED"
    elif grep -q "^check: OK" "$log"; then check="check ok"
    elif grep -q "^recorded " "$log"; then check="recorded"
    else check="did not finish"; fi
    if [ "$bad" -gt 0 ]; then check+=", $bad modules timed out/crashed"; fi
    echo "${total:-?} passed, $check"
}

run_version() {
    local v=$1 t0 t1 stages="" rc suite="" status=ok host_py
    ROOT="" WHERE=""
    R_BUILD[$v]=- R_PYTEST[$v]=- R_CONF[$v]=- R_PY[$v]=-
    t0=$(now)
    echo
    echo "================ Python $v"

    # Where this version's Python comes from.
    if host_py=$(host_python "$v"); then
        WHERE=${host_py%% *}
        PY_IN=${host_py#* }
        VENV_IN=$ROOTS/venv/$v
        TARGET_IN=$ROOTS/target/$v
        LOG_IN=$ROOTS/logs/$v
        REPO_IN=$REPO
    else
        case $v in
        3.12) echo "NOTICE: no pyenv build of 3.12 ($PYENV_DIR/versions/3.12.*) here: 3.12 skipped"
            R_WHERE[$v]=none R_STATUS[$v]=skipped R_TIME[$v]=0; return 0 ;;
        3.11) echo "NOTICE: no usable Python 3.11 here: 3.11 skipped"
            R_WHERE[$v]=none R_STATUS[$v]=skipped R_TIME[$v]=0; return 0 ;;
        3.13) suite=trixie ;;
        *) suite=sid ;;
        esac
        WHERE=$suite
        t1=$(now)
        rc=0
        ensure_root "$suite" || rc=$?
        [ $rc -eq 0 ] && { ensure_root_python "$suite" "$v" || rc=$?; }
        stages+="root $(($(now) - t1))s, "
        if [ $rc -eq 3 ]; then
            echo "NOTICE: Debian $suite has no python$v: $v skipped"
            R_WHERE[$v]=$suite R_STATUS[$v]=skipped R_TIME[$v]=$(($(now) - t0)); return 0
        elif [ $rc -ne 0 ]; then
            echo "ERROR: could not set up the $suite root for $v"
            R_WHERE[$v]=$suite R_STATUS[$v]="root setup failed" R_TIME[$v]=$(($(now) - t0))
            FAILED=1; return 0
        fi
        ROOT=$ROOTS/$suite
        PY_IN=/usr/bin/python$v
        VENV_IN=$IN_CACHE/venv/$v
        TARGET_IN=$IN_CACHE/target/$v
        LOG_IN=$IN_CACHE/logs/$v
        REPO_IN=$IN_REPO
        local repo_mode=ro
        [ ${#RECORD[@]} -gt 0 ] && repo_mode=rw # --record writes tools/conformance.json
        if ! { refresh_root_files "$ROOT" && mount_for_build "$ROOT" "$repo_mode"; }; then
            echo "ERROR: could not mount what the $suite root needs"
            unmount_mine "$ROOT" || true
            R_WHERE[$v]=$suite R_STATUS[$v]="root setup failed" R_TIME[$v]=$(($(now) - t0))
            FAILED=1; return 0
        fi
    fi
    R_WHERE[$v]=$WHERE
    LOG_HOST=$ROOT$LOG_IN
    mkdir -p "$LOG_HOST" "$(dirname "$ROOT$VENV_IN")" "$ROOT$TARGET_IN"
    R_PY[$v]=$(run_env '"$PY" -c "import platform; print(platform.python_version())"' 2>/dev/null || echo '?')
    echo "-- Python ${R_PY[$v]} ($WHERE: $PY_IN), venv $ROOT$VENV_IN, logs $LOG_HOST"

    # 1. venv and test dependencies
    t1=$(now)
    rc=0
    run_env "$SETUP_VENV" >"$LOG_HOST/venv.log" 2>&1 || rc=$?
    grep '^NOTICE' "$LOG_HOST/venv.log" || true
    stages+="venv $(($(now) - t1))s, "
    if [ $rc -ne 0 ]; then
        echo "ERROR: the venv or the test dependencies did not install; last lines of $LOG_HOST/venv.log:"
        tail -15 "$LOG_HOST/venv.log"
        status="venv failed"
    fi

    # 2. build and install rloop
    if [ "$status" = ok ]; then
        t1=$(now)
        rc=0
        echo "-- building rloop (log: $LOG_HOST/build.log)"
        run_env "$BUILD" >"$LOG_HOST/build.log" 2>&1 || rc=$?
        stages+="build $(($(now) - t1))s, "
        if [ $rc -eq 0 ]; then
            R_BUILD[$v]="ok"
        else
            R_BUILD[$v]="FAILED"
            status="build failed"
            echo "BUILD FAILED for $v; the errors (all of it in $LOG_HOST/build.log):"
            build_errors "$LOG_HOST/build.log"
        fi
    fi

    # 3. pytest
    if [ "$status" = ok ]; then
        t1=$(now)
        rc=0
        echo "-- pytest (log: $LOG_HOST/pytest.log)"
        run_env "$PYTEST" >"$LOG_HOST/pytest.log" 2>&1 || rc=$?
        stages+="pytest $(($(now) - t1))s, "
        # The failures' one-line summary and the counts; the full output is in the log.
        sed -n '/short test summary info/,$p' "$LOG_HOST/pytest.log" | head -150
        R_PYTEST[$v]=$(pytest_summary "$LOG_HOST/pytest.log")
        if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
            R_PYTEST[$v]+=" (timed out after ${PYTEST_TIMEOUT}s)"
        fi
        echo "   pytest: ${R_PYTEST[$v]} (rc $rc)"
        [ $rc -eq 0 ] || status="failed"
    fi

    # 4. conformance: check RLoop and TokioLoop; record what --record names.
    if [ $CONFORMANCE = 1 ] && [ "$status" != "venv failed" ]; then
        local loop mode conf=""
        t1=$(now)
        local loops=()
        for loop in asyncio uvloop; do has_record $loop && loops+=("$loop"); done
        [ "${R_BUILD[$v]}" = ok ] && loops+=(rloop tokio)
        for loop in "${loops[@]+"${loops[@]}"}"; do
            mode=check
            has_record "$loop" && mode=record
            echo "-- conformance --$mode --loop $loop (log: $LOG_HOST/conformance-$loop.log)"
            rc=0
            run_env "$(conformance_script "$mode" "$loop")" 2>&1 | tee "$LOG_HOST/conformance-$loop.log" || rc=$?
            conf+="$loop: $(conformance_summary "$LOG_HOST/conformance-$loop.log"); "
            [ $rc -eq 0 ] || [ "$status" != ok ] || status=failed
        done
        stages+="conformance $(($(now) - t1))s, "
        R_CONF[$v]=${conf%; }
    fi

    if [ -n "$ROOT" ]; then
        unmount_mine "$ROOT" || true
    fi
    R_STATUS[$v]=$status
    R_TIME[$v]=$(($(now) - t0))
    R_STAGES[$v]=${stages%, }
    echo "-- $v: $status in ${R_TIME[$v]}s (${R_STAGES[$v]})"
    [ "$status" = ok ] || FAILED=1
}

START=$(now)
echo "== rloop test matrix: Python ${VERSIONS[*]}; cache $ROOTS${PROFILE_VARS[*]:+; ${PROFILE_VARS[*]}}"
for v in "${VERSIONS[@]}"; do
    run_version "$v"
done

echo
echo "================ matrix summary ($(($(now) - START))s; logs under $ROOTS)"
printf '%-5s %-8s %-7s %-13s %-7s %s\n' version python where status build pytest
for v in "${VERSIONS[@]}"; do
    printf '%-5s %-8s %-7s %-13s %-7s %s\n' "$v" "${R_PY[$v]:--}" "${R_WHERE[$v]:--}" \
        "${R_STATUS[$v]}" "${R_BUILD[$v]:--}" "${R_PYTEST[$v]:--}"
    [ "${R_CONF[$v]:--}" = - ] || echo "      conformance: ${R_CONF[$v]}"
    [ -z "${R_STAGES[$v]:-}" ] || echo "      time: ${R_TIME[$v]}s (${R_STAGES[$v]})"
done
exit $FAILED
