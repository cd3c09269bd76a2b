#!/usr/bin/env bash
# Stop the daemons that tests/slurm/setup_slurm.sh started, by the PIDs it
# recorded in $STATE_DIR (never by name: daemons someone else started are left
# alone, and a recorded PID is signalled only while it still names the daemon).
# Safe to run when nothing is running. Packages, configuration and the
# accounting database stay, so a later setup_slurm.sh starts in seconds.
set -uo pipefail

STATE_DIR=${LOOD_SLURM_STATE_DIR:-/run/lood-slurm}
[[ -d $STATE_DIR ]] || { echo "stop_slurm: nothing recorded in $STATE_DIR"; exit 0; }

declare -A COMM=(
    [munged]=munged [mariadb]=mariadbd
    [slurmdbd]=slurmdbd [slurmctld]=slurmctld [slurmd]=slurmd
)

pid_is() {  # pid_is PID COMM: PID is a live process named COMM (zombies are not)
    local pid=$1 state
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)
    [[ -n $state && $state != Z && $state != X ]]
}

# Reverse start order: node daemon, controller, accounting, database, auth.
for name in slurmd slurmctld slurmdbd mariadb munged; do
    f=$STATE_DIR/$name.pid
    [[ -s $f ]] || continue
    pid=$(cat "$f")
    if pid_is "$pid" "${COMM[$name]}"; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 100); do pid_is "$pid" "${COMM[$name]}" || break; sleep 0.2; done
        if pid_is "$pid" "${COMM[$name]}"; then
            echo "stop_slurm: $name (pid $pid) ignored SIGTERM for 20 s; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    rm -f "$f"
done
echo "stop_slurm: stopped"
