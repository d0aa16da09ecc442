#!/usr/bin/env bash
# Where each CPython that rloop supports comes from on this machine, and the
# Debian roots that provide the ones the host lacks. Sourced, not run, by
# tools/matrix.sh (tests on every version) and tools/wheels.sh (a wheel per
# version), after their `set -euo pipefail`:
#
#   . "$(dirname "$0")/pythons.sh"
#   pythons_private_ns "$@"    # re-run the script in its own mount namespace
#   ... parse the arguments ...
#   pythons_check_roots        # validate $ROOTS (RLOOP_ROOTS)
#   pythons_lock               # one run at a time over $ROOTS
#   locate_python 3.14         # sets WHERE, ROOT and PY_IN
#
# Where each Python comes from:
#   3.11       the host's python3 ($PYTHON if set), else python3.11 or pyenv
#   3.12       pyenv ($PYENV_ROOT/versions/3.12.*); none: skipped with a notice
#   3.13       pyenv; none: a Debian trixie root
#   3.14 3.15  a Debian sid root
# A Debian root is made once with debootstrap from the mirror that the host's
# own apt sources name, kept in the cache directory $ROOTS and reused (a
# marker file says it is complete); its Python runs there with chroot. Mounts
# into a root are made with do_mount, remembered, and undone in order by
# unmount_mine and by the EXIT trap set here; in the private namespace nobody
# else on the machine sees them (or has theirs undone by us), and they vanish
# with the run however it ends.
#
# shellcheck disable=SC2034  # the variables set here are for the scripts that source this

# Re-run the calling script ("$0", with the arguments given) in a private
# mount namespace; without one (not root, or a sandbox that refuses it) the
# mounts are made in the host's.
pythons_private_ns() {
    if [ -z "${RLOOP_MATRIX_IN_NS:-}" ] && [ "$(id -u)" = 0 ] &&
        unshare --mount --propagation private true 2>/dev/null; then
        RLOOP_MATRIX_IN_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
    fi
    [ -n "${RLOOP_MATRIX_IN_NS:-}" ] ||
        echo "NOTICE: no private mount namespace (unshare): a root's mounts are visible machine-wide"
}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ALL_VERSIONS=(3.11 3.12 3.13 3.14 3.15)
ROOTS=${RLOOP_ROOTS:-/var/tmp/rloop-roots}
CARGO_DIR=${CARGO_HOME:-$HOME/.cargo}
RUSTUP_DIR=${RUSTUP_HOME:-$HOME/.rustup}
PYENV_DIR=${PYENV_ROOT:-$HOME/.pyenv}
# Packages a root needs besides Python: cc for the Rust linker, certificates
# for pip and cargo, netbase for /etc/services and /etc/protocols.
ROOT_BASE_PACKAGES=(gcc libc6-dev ca-certificates netbase)
# Paths inside a root (the root itself lives in the cache directory).
IN_REPO=/src
IN_CACHE=/var/tmp/rloop-matrix

now() { date +%s; }

# pythons_record_version V STATUS T0 STAGES: a version's outcome into the
# caller's R_STATUS, R_TIME and R_STAGES (FAILED=1 unless ok), and printed.
pythons_record_version() {
    R_STATUS[$1]=$2
    R_TIME[$1]=$(($(now) - $3))
    R_STAGES[$1]=${4%, }
    echo "-- $1: $2 in ${R_TIME[$1]}s (${R_STAGES[$1]})"
    [ "$2" = ok ] || FAILED=1
}

# pythons_add_version V: a version argument of matrix.sh or wheels.sh,
# appended to VERSIONS; an unsupported one ends the script (status 2).
pythons_add_version() {
    [[ " ${ALL_VERSIONS[*]} " == *" $1 "* ]] || {
        echo "unsupported version $1 (supported: ${ALL_VERSIONS[*]})" >&2; exit 2; }
    VERSIONS+=("$1")
}

pythons_check_roots() {
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
}

# One run (tools/matrix.sh or tools/wheels.sh) at a time: runs share the
# roots, and the machine is too small for two builds at once.
pythons_lock() {
    mkdir -p "$ROOTS"
    exec 9>"$ROOTS/.lock"
    if ! flock -n 9; then
        echo "== another run (tools/matrix.sh or tools/wheels.sh) holds $ROOTS/.lock; waiting for it"
        flock 9
    fi
}

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

# Find Python $1: set WHERE (host, pyenv, or the Debian suite of its root),
# ROOT (empty on the host, else the root's directory) and PY_IN (the
# interpreter's path where it runs: on the host, or inside ROOT), making the
# root first if need be. Returns 3 with a notice if this machine has no such
# Python (WHERE=none, or the suite has none), 1 with an error if a root could
# not be set up.
locate_python() {
    local v=$1 host_py suite rc=0
    WHERE="" ROOT="" PY_IN=""
    if host_py=$(host_python "$v"); then
        WHERE=${host_py%% *}
        PY_IN=${host_py#* }
        return 0
    fi
    case $v in
    3.12) echo "NOTICE: no pyenv build of 3.12 ($PYENV_DIR/versions/3.12.*) here: 3.12 skipped"
        WHERE=none; return 3 ;;
    3.11) echo "NOTICE: no usable Python 3.11 here: 3.11 skipped"
        WHERE=none; return 3 ;;
    3.13) suite=trixie ;;
    *) suite=sid ;;
    esac
    WHERE=$suite
    ensure_root "$suite" || rc=$?
    [ $rc -eq 0 ] && { ensure_root_python "$suite" "$v" || rc=$?; }
    if [ $rc -eq 3 ]; then
        echo "NOTICE: Debian $suite has no python$v: $v skipped"
        return 3
    elif [ $rc -ne 0 ]; then
        echo "ERROR: could not set up the $suite root for $v"
        return 1
    fi
    ROOT=$ROOTS/$suite
    PY_IN=/usr/bin/python$v
}
