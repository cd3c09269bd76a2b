#!/usr/bin/env bash
# Stop the daemons that tests/slurm/setup_slurm.sh started, by the PIDs it
# recorded in $STATE_DIR (never by name: daemons someone else started are left
# alone). Safe to run when nothing is running. Configuration, packages and the
# accounting database stay, so a later setup_slurm.sh starts in seconds.
set -uo pipefail

STATE_DIR=${LOOD_SLURM_STATE_DIR:-/run/lood-slurm}
[[ -d $STATE_DIR ]] || exit 0

running() {  # running PID: a live process (a zombie, which no one reaps here, is not)
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

# Reverse start order: node daemon, controller, accounting, database, auth.
for name in slurmd slurmctld slurmdbd mariadb munged; do
    f=$STATE_DIR/$name.pid
    [[ -s $f ]] || continue
    pid=$(cat "$f")
    if running "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 100); do running "$pid" || break; sleep 0.2; done
        if running "$pid"; then
            echo "stop_slurm: $name (pid $pid) ignored SIGTERM for 20s; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    rm -f "$f"
done
echo "stop_slurm: stopped"
