#!/usr/bin/env bash
# A throwaway systemd, booted as PID 1 in a systemd-nspawn container, for the systemd tests.
#
#   container-harness.sh boot DIR [NSPAWN-OPTION...]   boot; prints the container's PID 1 (host view)
#   container-harness.sh exec DIR COMMAND [ARG...]     run a command inside (all its namespaces)
#   container-harness.sh pid DIR                       the container's PID 1
#   container-harness.sh teardown DIR                  stop it, remove every trace, remove DIR
#
# DIR is a fresh state directory the caller owns. Before `boot`, the caller may fill DIR/payload:
# it is copied over the container's root (units, configuration, symlinks to the binaries).
# NSPAWN-OPTIONs are passed on, e.g. --bind-ro=/path/to/build:/opt/webhook-tokend/bin.
#
# How it stays throwaway and leaves nothing behind on the host:
#  - the container's root is an overlay of the host's / with a tmpfs upper layer: it sees the
#    host's files (Swift runtime, systemd), and whatever it writes vanishes with the tmpfs;
#  - the mounts live in a private mount namespace (unshare --mount --propagation private), with
#    a tmpfs over /run for nspawn's own bookkeeping: they disappear with the namespace;
#  - nspawn runs in a cgroup of its own (--keep-unit --register=no: no machined, no scope unit),
#    which teardown empties (SIGKILL) and removes, in every cgroup hierarchy;
#  - it boots webhook-test.target instead of default.target, so none of the host's enabled
#    services start; --private-network gives it its own loopback only.
# A supervisor process holds the namespace, and tears everything down itself when nspawn exits
# or when the process that booted the container (or the one named by $HARNESS_OWNER_PID) dies
# (HARNESS_OWNER_PID=1 keeps it until `teardown`, for use by hand).
set -euo pipefail

readonly TARGET=webhook-test.target
SELF=$(readlink -f "$0")

die() { echo "container-harness: $*" >&2; exit 1; }

# The cgroup hierarchies to create the container's cgroup in: the unified one (cgroup v2 only),
# or, on a hybrid/legacy host, systemd's named v1 hierarchy plus the unified one if mounted.
cgroup_roots() {
    if [[ "$(stat -fc %T /sys/fs/cgroup)" == cgroup2fs ]]; then
        echo /sys/fs/cgroup
    else
        local root
        for root in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
            [[ -d $root ]] && echo "$root"
        done
    fi
    return 0
}

# Kills every process left in the cgroup NAME (all hierarchies) and removes its cgroups.
remove_cgroups() {
    local name=$1 root attempt
    for attempt in $(seq 50); do
        local left=0
        for root in $(cgroup_roots); do
            [[ -d $root/$name ]] || continue
            local pids
            pids=$(find "$root/$name" -name cgroup.procs -exec cat {} + 2>/dev/null || true)
            if [[ -n $pids ]]; then
                left=1
                kill -KILL $pids 2>/dev/null || true
            fi
        done
        (( left == 0 )) && break
        sleep 0.1
    done
    for root in $(cgroup_roots); do
        [[ -d $root/$name ]] && find "$root/$name" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    for root in $(cgroup_roots); do
        [[ -d $root/$name ]] && { echo "container-harness: could not remove cgroup $root/$name" >&2; return 1; }
    done
    return 0
}

cgroup_name() { echo "webhook-test-$(basename "$1")"; }

# ---------------------------------------------------------------------------------------------
# Runs inside the private mount namespace: mounts the root, starts nspawn, waits, cleans up.
supervise() {
    local dir=$1 owner=$2; shift 2
    local name; name=$(cgroup_name "$dir")
    local root=$dir/root layer=$dir/layer

    mount -t tmpfs -o mode=0755 webhook-test-layer "$layer"
    mkdir -p "$layer/upper" "$layer/work"
    mount -t overlay webhook-test-root -o "lowerdir=/,upperdir=$layer/upper,workdir=$layer/work" "$root"
    mount -t tmpfs -o mode=0755 webhook-test-run /run

    # Boot only what the tests need: basic.target (journald, sysusers, tmpfiles) and nothing the
    # host has enabled. Timers (apt, man-db …) are masked; the host's getty etc. are never pulled.
    cat >"$root/etc/systemd/system/$TARGET" <<EOF
[Unit]
Description=webhook-tokend systemd tests
Requires=basic.target
After=basic.target
AllowIsolate=yes
EOF
    ln -sf /dev/null "$root/etc/systemd/system/timers.target"
    if [[ -d $dir/payload ]]; then
        cp -a "$dir/payload/." "$root/"
    fi

    (
        # nspawn (and so the container) in a cgroup of its own, so teardown can find every process.
        local cgroup_root
        for cgroup_root in $(cgroup_roots); do
            mkdir -p "$cgroup_root/$name"
            echo $BASHPID >"$cgroup_root/$name/cgroup.procs"
        done
        exec systemd-nspawn --quiet --directory="$root" --machine="$name" --boot --register=no --keep-unit \
            --link-journal=no --private-network --console=passive "$@" -- "systemd.unit=$TARGET"
    ) &
    local nspawn=$!
    echo "$nspawn" >"$dir/nspawn.pid"

    # Wait for nspawn to exit, stopping it when whoever booted the container has gone away.
    while kill -0 "$nspawn" 2>/dev/null; do
        if ! kill -0 "$owner" 2>/dev/null; then
            echo "container-harness: owner $owner is gone; stopping the container" >&2
            kill -TERM "$nspawn" 2>/dev/null || true
            break
        fi
        sleep 0.5
    done
    local waited=0
    while kill -0 "$nspawn" 2>/dev/null && (( waited < 100 )); do sleep 0.1; waited=$((waited + 1)); done
    wait "$nspawn" 2>/dev/null || true
    remove_cgroups "$name" || true
    touch "$dir/stopped"
    if ! kill -0 "$owner" 2>/dev/null; then
        # Nobody will call teardown: remove the state directory too (unmounted first).
        umount -R "$root" "$layer" 2>/dev/null || true
        rm -rf --one-file-system "$dir"
    fi
}

# ---------------------------------------------------------------------------------------------

container_pid() {
    local dir=$1
    [[ -s $dir/pid1 ]] || die "no container booted in $dir"
    cat "$dir/pid1"
}

cmd_boot() {
    local dir=${1:?usage: boot DIR [NSPAWN-OPTION...]}; shift
    [[ $(id -u) -eq 0 ]] || die "needs root"
    command -v systemd-nspawn >/dev/null || die "systemd-nspawn is missing (apt: systemd-container)"
    mkdir -p "$dir/root" "$dir/layer"
    dir=$(cd "$dir" && pwd)
    local owner=${HARNESS_OWNER_PID:-$PPID}

    # The supervisor outlives this command: it must not hold on to descriptors we inherited (a
    # caller reading our output to its end would wait for the container's teardown).
    local fd
    for fd in $(ls /proc/$$/fd); do
        if (( fd > 2 )); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    setsid unshare --mount --propagation private -- bash "$SELF" __supervise "$dir" "$owner" "$@" \
        </dev/null >"$dir/console.log" 2>&1 &
    echo $! >"$dir/supervisor.pid"

    # The container's PID 1: nspawn's child whose PID in its own namespace is 1.
    local deadline=$((SECONDS + 30)) pid1=""
    while [[ -z $pid1 ]]; do
        (( SECONDS < deadline )) || { cat "$dir/console.log" >&2; die "the container did not start"; }
        [[ -f $dir/stopped ]] && { cat "$dir/console.log" >&2; die "nspawn exited during boot"; }
        if [[ -s $dir/nspawn.pid ]]; then
            local child
            for child in $(cat "/proc/$(cat "$dir/nspawn.pid")/task/"*/children 2>/dev/null); do
                if grep -qE '^NSpid:.*[[:space:]]1$' "/proc/$child/status" 2>/dev/null; then
                    pid1=$child
                fi
            done
        fi
        [[ -n $pid1 ]] || sleep 0.05
    done
    echo "$pid1" >"$dir/pid1"

    # Booted when systemd says so (webhook-test.target reached; "degraded" is fine too).
    local state=""
    while (( SECONDS < deadline )); do
        state=$(nsenter -t "$pid1" -a systemctl is-system-running 2>/dev/null || true)
        [[ $state == running || $state == degraded ]] && break
        sleep 0.05
    done
    [[ $state == running || $state == degraded ]] || { cat "$dir/console.log" >&2; die "boot did not finish (state: ${state:-unknown})"; }
    echo "$pid1"
}

cmd_exec() {
    local dir=${1:?usage: exec DIR COMMAND [ARG...]}; shift
    local pid1; pid1=$(container_pid "$dir")
    exec nsenter -t "$pid1" -a -- "$@"
}

cmd_teardown() {
    local dir=${1:?usage: teardown DIR}
    [[ -d $dir ]] || return 0
    dir=$(cd "$dir" && pwd)
    local supervisor="" nspawn=""
    [[ -s $dir/supervisor.pid ]] && supervisor=$(cat "$dir/supervisor.pid")
    [[ -s $dir/nspawn.pid ]] && nspawn=$(cat "$dir/nspawn.pid")

    # A clean shutdown first (nspawn turns SIGTERM into a halt of the container's systemd) …
    if [[ -n $nspawn ]] && kill -0 "$nspawn" 2>/dev/null; then
        kill -TERM "$nspawn" 2>/dev/null || true
    fi
    # … then the supervisor removes the cgroups and, by exiting, the mount namespace.
    local waited=0
    while [[ -n $supervisor ]] && kill -0 "$supervisor" 2>/dev/null && (( waited < 150 )); do
        sleep 0.1
        waited=$((waited + 1))
    done
    # If something hung, force it.
    if [[ -n $supervisor ]] && kill -0 "$supervisor" 2>/dev/null; then
        echo "container-harness: forcing teardown of $dir" >&2
        kill -KILL "$supervisor" 2>/dev/null || true
    fi
    remove_cgroups "$(cgroup_name "$dir")"
    rm -rf "$dir"
}

case ${1:-} in
boot) shift; cmd_boot "$@" ;;
exec) shift; cmd_exec "$@" ;;
pid) shift; container_pid "$@" ;;
teardown) shift; cmd_teardown "$@" ;;
__supervise) shift; supervise "$@" ;;
*) die "usage: $0 boot|exec|pid|teardown DIR …" ;;
esac
