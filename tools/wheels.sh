#!/usr/bin/env bash
# Binary wheels of rloop, one per CPython version it supports, each shown to
# install and run on a machine without Rust:
#
#   bash tools/wheels.sh [--out DIR] [VERSION...]
#
# VERSION is one of 3.11 3.12 3.13 3.14 3.15 (default: all of them), found
# where tools/matrix.sh finds it (tools/pythons.sh: the host, pyenv, Debian
# roots); a version that is not available here is skipped with a notice. For
# each version:
#
#   build  `maturin build --release --locked --zig --compatibility manylinux_2_17`:
#          zig links against glibc 2.17's symbols, so the wheel is tagged
#          manylinux_2_17 (alias manylinux2014), the oldest tag a Rust
#          extension can have: Rust's standard library needs glibc 2.17.
#          Every build runs on the host into one cargo target dir
#          ($ROOTS/target/wheels), so the dependencies compile once; a Python
#          that lives in a root is described to maturin by a pyo3 config file
#          made from that Python's own sysconfig (PYO3_CONFIG_FILE).
#   audit  `auditwheel show` must find the wheel consistent with one of the
#          manylinux tags in its name, and the wheel must hold exactly one
#          extension, named with that Python's EXT_SUFFIX.
#   check  a fresh venv of that Python (inside its root for a root's Python),
#          with nothing but the venv on PATH (no cargo, rustc or cc):
#          `pip install --no-index --only-binary :all:` the wheel, then, from
#          a folder outside the repo, examples/hello.py run by `python`,
#          `python -m rloop` and `python -m rloop --loop tokio`.
#
# The wheels land in DIR (default dist/, ignored by git); one summary row per
# version comes last. Exit status 1 if any version failed.
#
# maturin, ziglang and auditwheel are installed from PyPI into a tools venv,
# $ROOTS/venv/wheels-tools, made with the host's Python ($PYTHON, default
# python3). RLOOP_ROOTS is the cache directory, as for tools/matrix.sh.
#
# shellcheck disable=SC2016  # the $VARs of the scripts run_clean runs expand there
set -euo pipefail

# shellcheck source=tools/pythons.sh
. "$(dirname "$0")/pythons.sh"
pythons_private_ns "$@"

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

OUT=$REPO/dist
VERSIONS=()
while [ $# -gt 0 ]; do
    case $1 in
    --out)
        [ $# -ge 2 ] || { echo "--out needs a directory" >&2; exit 2; }
        mkdir -p "$2"
        OUT=$(cd "$2" && pwd)
        shift ;;
    -h | --help) usage; exit 0 ;;
    3.*) pythons_add_version "$1" ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=("${ALL_VERSIONS[@]}")
pythons_check_roots
cd "$REPO"
pythons_lock

COMPAT=manylinux_2_17
# The build tools, at the versions this script was tested with.
TOOL_PACKAGES=(maturin==1.16.0 ziglang==0.17.1 auditwheel==6.8.2)
TOOLS=$ROOTS/venv/wheels-tools
TARGET=$ROOTS/target/wheels
WORK=$ROOTS/wheels         # maturin's output and the check venvs, per version
LOGS=$ROOTS/logs/wheels
IN_WORK=$IN_CACHE/wheels   # the same, for a Python in a root
mkdir -p "$OUT" "$TARGET" "$WORK" "$LOGS"

# run_clean DIR SCRIPT [VAR=VALUE...]: run a bash script from DIR (a path
# where the current version's Python runs: on the host or in its root), in a
# clean environment whose PATH is DIR/venv/bin alone, with HOME=DIR/home and
# the variables given; at most 5 minutes.
run_clean() {
    local dir=$1 script=$2
    shift 2
    local vars=(HOME="$dir/home" LANG=C.UTF-8 PATH="$dir/venv/bin" PYTHONNOUSERSITE=1
        PIP_DISABLE_PIP_VERSION_CHECK=1 "$@")
    script="set -euo pipefail; cd \"\$HOME/..\"; $script"
    if [ -z "$ROOT" ]; then
        timeout -k 10 300 env -i "${vars[@]}" "$BASH" -c "$script"
    else
        timeout -k 10 300 chroot "$ROOT" /usr/bin/env -i "${vars[@]}" /bin/bash -c "$script"
    fi
}

# Printed by the version's Python: its full version, its EXT_SUFFIX, then a
# pyo3 config file for it (the keys pyo3-build-config and maturin read).
DESCRIBE=$(cat <<'EOF'
import platform, struct, sys, sysconfig

if sys.implementation.name != "cpython":
    sys.exit(f"not CPython: {sys.implementation.name}")
var = sysconfig.get_config_var
flags = ["Py_DEBUG", "Py_REF_DEBUG", "Py_TRACE_REFS", "COUNT_ALLOCS", "Py_GIL_DISABLED"]
print(platform.python_version())
print(var("EXT_SUFFIX"))
print("implementation=CPython")
print("version=%d.%d" % sys.version_info[:2])
print("shared=%s" % ("true" if str(var("Py_ENABLE_SHARED")) == "1" else "false"))
print("abi3=false")
print("build_flags=" + ",".join(f for f in flags if str(var(f)) == "1"))
print("suppress_build_script_link_lines=false")
print("pointer_width=%d" % (struct.calcsize("P") * 8))
EOF
)

# The check, run by run_clean in a fresh venv's directory: PY (the version's
# interpreter) and WHEEL (the wheel, copied beside hello.py) are given.
CHECK=$(cat <<'EOF'
"$PY" -m venv venv
for tool in cargo rustc cc; do
    if command -v "$tool" >/dev/null; then
        echo "FAIL: $tool is on PATH: $(command -v "$tool")"; exit 1
    fi
done
echo "PATH=$PATH; no cargo, rustc or cc on it"
echo "\$ pip install --no-index --only-binary :all: $WHEEL"
python -m pip install --no-index --only-binary :all: "$WHEEL"
python -c '
import sys, rloop._rloop as ext
print("rloop imported from", ext.__file__)
if not ext.__file__.startswith(sys.prefix + "/"):
    sys.exit("FAIL: rloop was not imported from the venv")'
run() { # run EXPECTED ARGS...: python ARGS, which must print "running on ...EXPECTED"
    local want=$1 out
    shift
    echo "\$ python $*"
    local rc=0
    out=$(python "$@") || rc=$?
    echo "$out"
    [ $rc -eq 0 ] || { echo "FAIL: exit status $rc"; return 1; }
    [[ $out == *"running on "*"$want"* ]] || { echo "FAIL: not run on $want"; return 1; }
}
run asyncio hello.py
run .RLoop -m rloop hello.py
run .TokioLoop -m rloop --loop tokio hello.py
echo "check ok"
EOF
)

declare -A R_PY R_WHERE R_STATUS R_WHEEL R_TAG R_SIZE R_TIME R_STAGES
FAILED=0

# The platform tag auditwheel finds wheel $1 consistent with ("" if none).
audit_tag() {
    "$TOOLS/bin/auditwheel" show "$1" 2>&1 | tr -s '[:space:]' ' ' |
        sed -n 's/.*is consistent with the following platform tag: "\([^"]*\)".*/\1/p'
}

build_version() {
    local v=$1 t0 t1 rc=0 stages="" desc ext cfg="" stage wheel tag plat dir
    local host_dir check_log build_log=$LOGS/$v-build.log
    t0=$(now)
    echo
    echo "================ Python $v"
    R_PY[$v]=- R_WHEEL[$v]=- R_TAG[$v]=- R_SIZE[$v]=-
    locate_python "$v" || rc=$?
    R_WHERE[$v]=$WHERE
    if [ $rc -ne 0 ]; then
        R_TIME[$v]=$(($(now) - t0))
        if [ $rc -eq 3 ]; then R_STATUS[$v]=skipped; else R_STATUS[$v]="root setup failed"; FAILED=1; fi
        return 0
    fi
    if [ -n "$ROOT" ]; then
        if ! { refresh_root_files "$ROOT" && mount_system "$ROOT"; }; then
            echo "ERROR: could not mount /proc and /dev in the $WHERE root"
            unmount_mine "$ROOT" || true
            R_STATUS[$v]="root setup failed" R_TIME[$v]=$(($(now) - t0)) FAILED=1
            return 0
        fi
    fi
    # That Python, described by itself.
    if [ -z "$ROOT" ]; then
        desc=$("$PY_IN" -c "$DESCRIBE")
    else
        desc=$(chroot "$ROOT" /usr/bin/env -i LANG=C.UTF-8 "$PY_IN" -c "$DESCRIBE")
    fi || {
        echo "ERROR: $PY_IN did not describe itself"
        unmount_mine "$ROOT" || true
        R_STATUS[$v]="python failed" R_TIME[$v]=$(($(now) - t0)) FAILED=1
        return 0
    }
    R_PY[$v]=$(sed -n 1p <<<"$desc")
    ext=$(sed -n 2p <<<"$desc")
    echo "-- Python ${R_PY[$v]} ($WHERE: $PY_IN), extension suffix $ext"

    # 1. build
    t1=$(now)
    stage=$WORK/build/$v
    rm -rf "$stage"
    mkdir -p "$stage"
    local interp=(-i "$PY_IN")
    if [ -n "$ROOT" ]; then
        # Not runnable from the host: maturin and pyo3 read this instead.
        cfg=$stage/pyo3-config.txt
        sed -n '3,$p' <<<"$desc" >"$cfg"
        interp=()
    fi
    echo "-- maturin build (log: $build_log)"
    rc=0
    env -u PYTHONPATH -u PYTHONHOME -u VIRTUAL_ENV -u PYO3_PYTHON -u PYO3_CONFIG_FILE \
        ${cfg:+PYO3_CONFIG_FILE="$cfg"} PATH="$TOOLS/bin:$PATH" CARGO_TARGET_DIR="$TARGET" \
        maturin build --release --locked --zig --compatibility "$COMPAT" "${interp[@]+"${interp[@]}"}" -o "$stage" \
        >"$build_log" 2>&1 || rc=$?
    stages+="build $(($(now) - t1))s, "
    shopt -s nullglob
    local wheels=("$stage"/*.whl)
    shopt -u nullglob
    if [ $rc -ne 0 ] || [ ${#wheels[@]} -ne 1 ]; then
        echo "BUILD FAILED for $v (rc $rc, ${#wheels[@]} wheels); last lines of $build_log:"
        tail -30 "$build_log"
        unmount_mine "$ROOT" || true
        R_STATUS[$v]="build failed" R_TIME[$v]=$(($(now) - t0)) R_STAGES[$v]=${stages%, } FAILED=1
        return 0
    fi
    wheel=${wheels[0]}
    R_WHEEL[$v]=$(basename "$wheel")
    R_SIZE[$v]=$(stat -c %s "$wheel")

    # 2. audit
    t1=$(now)
    local status=ok
    tag=$(audit_tag "$wheel")
    R_TAG[$v]=${tag:-?}
    plat=${R_WHEEL[$v]%.whl}
    plat=${plat##*-}
    echo "-- auditwheel show: consistent with ${tag:-nothing}; the wheel says $plat"
    if [[ $tag != manylinux_* || .$plat. != *".$tag."* ]]; then
        echo "AUDIT FAILED for $v: auditwheel show says:"
        "$TOOLS/bin/auditwheel" show "$wheel" 2>&1 || true
        status="audit failed"
    elif ! "$TOOLS/bin/python" - "$wheel" "$ext" <<'EOF'
import sys, zipfile

exts = [n for n in zipfile.ZipFile(sys.argv[1]).namelist() if n.endswith(".so")]
want = "rloop/_rloop" + sys.argv[2]
if exts != [want]:
    sys.exit(f"AUDIT FAILED: the wheel's extensions are {exts}, not [{want!r}]")
EOF
    then
        status="audit failed"
    fi
    stages+="audit $(($(now) - t1))s, "
    rm -f "$OUT"/rloop-*-cp"${v/./}"-cp"${v/./}"-*.whl
    [ "$status" != ok ] || cp "$wheel" "$OUT/"

    # 3. install and run, without Rust
    if [ "$status" = ok ]; then
        t1=$(now)
        host_dir=$WORK/check/$v
        dir=$host_dir
        if [ -n "$ROOT" ]; then
            host_dir=$ROOT$IN_WORK/check/$v
            dir=$IN_WORK/check/$v
        fi
        rm -rf "$host_dir"
        mkdir -p "$host_dir/home"
        cp "$wheel" examples/hello.py "$host_dir/"
        check_log=$LOGS/$v-check.log
        echo "-- install and run in a fresh venv, $host_dir (log: $check_log)"
        rc=0
        run_clean "$dir" "$CHECK" PY="$PY_IN" WHEEL="$dir/${R_WHEEL[$v]}" >"$check_log" 2>&1 || rc=$?
        sed 's/^/   /' "$check_log"
        stages+="check $(($(now) - t1))s, "
        [ $rc -eq 0 ] || status="check failed"
    fi

    unmount_mine "$ROOT" || true
    pythons_record_version "$v" "$status" "$t0" "$stages"
}

START=$(now)
echo "== rloop wheels ($COMPAT): Python ${VERSIONS[*]}; into $OUT; cache $ROOTS"
t=$(now)
HOST_PY=${PYTHON:-python3}
if ! "$TOOLS/bin/python" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)' 2>/dev/null; then
    rm -rf "$TOOLS"
    "$HOST_PY" -m venv "$TOOLS"
fi
if ! "$TOOLS/bin/python" -m pip install -q --disable-pip-version-check "${TOOL_PACKAGES[@]}" \
    >"$LOGS/tools.log" 2>&1; then
    echo "ERROR: could not install ${TOOL_PACKAGES[*]} into $TOOLS; last lines of $LOGS/tools.log:"
    tail -15 "$LOGS/tools.log"
    exit 1
fi
echo "-- tools: ${TOOL_PACKAGES[*]} ($(($(now) - t))s)"

for v in "${VERSIONS[@]}"; do
    build_version "$v"
done

echo
echo "================ wheels summary ($(($(now) - START))s; wheels in $OUT, logs in $LOGS)"
printf '%-7s %-8s %-7s %-13s %-22s %8s %5s  %s\n' version python where result "auditwheel tag" size time wheel
for v in "${VERSIONS[@]}"; do
    size=${R_SIZE[$v]:--}
    [ "$size" = - ] || size=$(awk -v b="$size" 'BEGIN { printf "%.2f MiB", b / 1048576 }')
    printf '%-7s %-8s %-7s %-13s %-22s %8s %5s  %s\n' "$v" "${R_PY[$v]:--}" "${R_WHERE[$v]:--}" \
        "${R_STATUS[$v]}" "${R_TAG[$v]:--}" "$size" "${R_TIME[$v]}s" "${R_WHEEL[$v]:--}"
    [ -z "${R_STAGES[$v]:-}" ] || echo "        time: ${R_STAGES[$v]}"
done
exit $FAILED
