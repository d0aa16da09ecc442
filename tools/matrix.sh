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

# The Pythons and the Debian roots: tools/pythons.sh (shared with tools/wheels.sh).
# shellcheck source=tools/pythons.sh
. "$(dirname "$0")/pythons.sh"
pythons_private_ns "$@"
cd "$REPO"

CONF_TIMEOUT=${RLOOP_MATRIX_TIMEOUT:-90}
PYTEST_TIMEOUT=${RLOOP_MATRIX_PYTEST_TIMEOUT:-1200}

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
    3.*) pythons_add_version "$1" ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=("${ALL_VERSIONS[@]}")
pythons_check_roots
# Cargo profile overrides from the environment, for the roots' clean one.
mapfile -t PROFILE_VARS < <(env | grep '^CARGO_PROFILE_RELEASE_' || true)

has_record() {
    local loop
    for loop in "${RECORD[@]+"${RECORD[@]}"}"; do [ "$loop" = "$1" ] && return 0; done
    return 1
}

pythons_lock

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
    local v=$1 t0 t1 stages="" rc status=ok
    ROOT="" WHERE=""
    R_BUILD[$v]=- R_PYTEST[$v]=- R_CONF[$v]=- R_PY[$v]=-
    t0=$(now)
    echo
    echo "================ Python $v"

    # Where this version's Python comes from (a root is made if need be).
    t1=$(now)
    rc=0
    locate_python "$v" || rc=$?
    R_WHERE[$v]=$WHERE
    case $WHERE in host | pyenv | none) ;; *) stages+="root $(($(now) - t1))s, " ;; esac
    case $rc in
    0) ;;
    3) R_STATUS[$v]=skipped R_TIME[$v]=$(($(now) - t0)); return 0 ;;
    *) R_STATUS[$v]="root setup failed" R_TIME[$v]=$(($(now) - t0)); FAILED=1; return 0 ;;
    esac
    if [ -z "$ROOT" ]; then
        VENV_IN=$ROOTS/venv/$v
        TARGET_IN=$ROOTS/target/$v
        LOG_IN=$ROOTS/logs/$v
        REPO_IN=$REPO
    else
        VENV_IN=$IN_CACHE/venv/$v
        TARGET_IN=$IN_CACHE/target/$v
        LOG_IN=$IN_CACHE/logs/$v
        REPO_IN=$IN_REPO
        local repo_mode=ro
        [ ${#RECORD[@]} -gt 0 ] && repo_mode=rw # --record writes tools/conformance.json
        if ! { refresh_root_files "$ROOT" && mount_for_build "$ROOT" "$repo_mode"; }; then
            echo "ERROR: could not mount what the $WHERE root needs"
            unmount_mine "$ROOT" || true
            R_STATUS[$v]="root setup failed" R_TIME[$v]=$(($(now) - t0))
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
    pythons_record_version "$v" "$status" "$t0" "$stages"
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
