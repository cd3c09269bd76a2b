#!/usr/bin/env bash
# Install, configure and start a single-node SLURM (with accounting) on this
# Debian 12 machine, for tests/workflow/test_slurm.py and CI.
#
#   bash tests/slurm/setup_slurm.sh      # idempotent: reuses running daemons
#   bash tests/slurm/stop_slurm.sh       # stops them again, by recorded PID
#
# Needs root and Debian's package archive (apt-get). No systemd here, so every
# daemon is started by hand and its PID recorded in $STATE_DIR/<daemon>.pid.
#
# Why slurmdbd + MariaDB: snakemake-executor-plugin-slurm polls job states
# with `sacct` whenever the binary exists; without slurmdbd sacct fails and
# Snakemake waits forever. Real clusters run slurmdbd, so this also exercises
# the plugin's account check (`sacctmgr`) and lets the test read `sacct`.
#
# Quiet on success (one summary line); on failure it prints the daemon logs
# and exits non-zero. For test machines and CI: it owns /etc/slurm (and will
# not replace a slurm.conf it did not write).
set -euo pipefail
# Daemons and admin tools live in sbin, which a non-login root shell may lack.
export PATH=/usr/local/sbin:/usr/sbin:/sbin:$PATH

CLUSTER=${LOOD_SLURM_CLUSTER:-lood}
PARTITION=${LOOD_SLURM_PARTITION:-debug}
ACCOUNT=${LOOD_SLURM_ACCOUNT:-lood_test}
STATE_DIR=${LOOD_SLURM_STATE_DIR:-/run/lood-slurm}
LOG_DIR=/var/log/slurm
DB_PASS=lood-slurm-test   # local test database only, reachable by socket only

# Debian bookworm 22.05.8 packages; mariadb-server backs slurmdbd.
APT_PACKAGES=(munge slurmctld slurmd slurmdbd slurm-client mariadb-server)

t0=$SECONDS
log() { [[ -n ${LOOD_SLURM_VERBOSE:-} ]] && echo "setup_slurm: $*" >&2 || true; }

die() {
    echo "setup_slurm: ERROR: $*" >&2
    for f in "$LOG_DIR"/slurmdbd.log "$LOG_DIR"/slurmctld.log "$LOG_DIR"/slurmd.log \
             "$LOG_DIR"/mariadb.log /var/log/munge/munged.log; do
        [[ -f $f ]] && { echo "---- tail $f" >&2; tail -n 30 "$f" >&2; }
    done
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "must run as root (installs packages, starts daemons)"

# Each daemon's own PID file (the Debian defaults). A copy goes to
# $STATE_DIR/<name>.pid when this script starts the daemon, so stop_slurm.sh
# stops only what this script started.
declare -A PIDFILE=(
    [munged]=/run/munge/munged.pid
    [mariadb]=/run/mysqld/mysqld.pid
    [slurmdbd]=/run/slurmdbd.pid
    [slurmctld]=/run/slurmctld.pid
    [slurmd]=/run/slurmd.pid
)

# The process name of each daemon: a PID file left from an earlier boot or
# session may name a PID since reused by something else.
declare -A COMM=(
    [munged]=munged [mariadb]=mariadbd
    [slurmdbd]=slurmdbd [slurmctld]=slurmctld [slurmd]=slurmd
)

pid_is() {  # pid_is PID COMM: PID is a live process named COMM
    local pid=$1 state
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]] || return 1
    # A killed daemon may linger as a zombie (nothing reaps it here): not alive.
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)
    [[ -n $state && $state != Z && $state != X ]]
}

alive() {  # alive NAME: NAME's PID file names the running daemon
    local f=${PIDFILE[$1]}
    [[ -s $f ]] && pid_is "$(cat "$f")" "${COMM[$1]}"
}

record() {  # record NAME: remember that this script started NAME
    [[ -s ${PIDFILE[$1]} ]] || die "$1 wrote no PID file ${PIDFILE[$1]}"
    cp "${PIDFILE[$1]}" "$STATE_DIR/$1.pid"
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local limit=$1 what=$2; shift 2
    local end=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || die "timed out after ${limit}s waiting for $what"
        sleep 0.5
    done
}

wait_pidfile() {  # wait_pidfile NAME: the daemon has written its PID file
    wait_for 30 "$1 to write ${PIDFILE[$1]}" alive "$1"
}

# ---------------------------------------------------------------- 1. packages
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || die "apt-get update failed"
    # Package scripts may try to start services; with no init system that fails
    # harmlessly (and Docker-style images deny it via policy-rc.d anyway).
    apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        >"/tmp/lood-slurm-apt.log" 2>&1 \
        || { tail -n 40 /tmp/lood-slurm-apt.log >&2; die "apt-get install failed"; }
fi

mkdir -p "$STATE_DIR" "$LOG_DIR" /var/lib/slurm/slurmctld /var/lib/slurm/slurmd
chown slurm:slurm "$LOG_DIR" /var/lib/slurm/slurmctld /var/lib/slurm/slurmd

# ------------------------------------------------------------ 2. configuration
HOST=$(hostname -s)
# slurmd -C reports this machine's real CPUs/memory: the node line must match,
# or slurmctld marks the node INVALID.
NODE_HW=$(slurmd -C | head -n 1 | grep -oE '(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore|RealMemory)=[0-9]+' | tr '\n' ' ')
[[ $NODE_HW == *CPUs=* && $NODE_HW == *RealMemory=* ]] || die "slurmd -C gave no CPUs/RealMemory"

# slurm.conf must be at the default path: the slurm-jobstep executor drops
# SLURM_CONF from the job environment, so `srun` inside jobs reads /etc/slurm.
new_conf=$(cat <<EOF
# Written by tests/slurm/setup_slurm.sh: a one-node test cluster.
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups here: track processes through /proc; bind tasks with affinity.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
# Cores and memory are consumable, so several 1-core jobs share the node and
# --mem is checked against RealMemory.
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Keep finished jobs in slurmctld for 5 min (squeue/scontrol show them too).
MinJobAge=300
# Accounting: sacct (the plugin's status query) and sacctmgr (its account check).
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageEnforce=associations
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
# Keep sbatch --comment (the plugin writes rule_<name>_wildcards_<...> there),
# so sacct shows which rule each job ran.
AccountingStoreFlags=job_comment
NodeName=$HOST NodeAddr=127.0.0.1 ${NODE_HW}State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
)
new_dbd=$(cat <<EOF
# Written by tests/slurm/setup_slurm.sh
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
DebugLevel=info
LogFile=$LOG_DIR/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=$DB_PASS
EOF
)
mkdir -p /etc/slurm
# Never overwrite a real cluster's configuration.
for f in /etc/slurm/slurm.conf /etc/slurm/slurmdbd.conf; do
    if [[ -s $f ]] && ! head -n 1 "$f" | grep -q "Written by tests/slurm/setup_slurm.sh" \
        && [[ -z ${LOOD_SLURM_FORCE:-} ]]; then
        die "$f exists and was not written by this script; refusing to replace it" \
            "(LOOD_SLURM_FORCE=1 overrides)"
    fi
done
conf_changed=0
if [[ ! -f /etc/slurm/slurm.conf || $(cat /etc/slurm/slurm.conf) != "$new_conf" ]]; then
    printf '%s\n' "$new_conf" >/etc/slurm/slurm.conf
    conf_changed=1
fi
if [[ ! -f /etc/slurm/slurmdbd.conf || $(cat /etc/slurm/slurmdbd.conf) != "$new_dbd" ]]; then
    printf '%s\n' "$new_dbd" >/etc/slurm/slurmdbd.conf
    conf_changed=1
fi
chmod 644 /etc/slurm/slurm.conf
chown slurm:slurm /etc/slurm/slurmdbd.conf
chmod 600 /etc/slurm/slurmdbd.conf   # slurmdbd refuses a readable one

if ((conf_changed)); then
    # Running daemons would keep the old configuration: restart the SLURM ones.
    for d in slurmd slurmctld slurmdbd; do
        if alive "$d"; then
            log "config changed: stopping $d"
            pid=$(cat "${PIDFILE[$d]}"); kill "$pid"
            for _ in $(seq 100); do pid_is "$pid" "${COMM[$d]}" || break; sleep 0.2; done
            ! pid_is "$pid" "${COMM[$d]}" || die "$d (pid $pid) did not stop"
        fi
    done
fi

# ---------------------------------------------------------------- 3. munge
if ! alive munged; then
    [[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile /etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 755 /run/munge
    rm -f /run/munge/munged.pid
    # munged forks and writes its own PID file (as user munge, so in /run/munge).
    runuser -u munge -- /usr/sbin/munged </dev/null >/dev/null 2>&1 \
        || die "munged failed to start"
    wait_pidfile munged && record munged
    wait_for 10 "munged" bash -c 'munge -n | unmunge'
fi

# ---------------------------------------------------------------- 4. MariaDB
if ! alive mariadb; then
    if [[ ! -d /var/lib/mysql/mysql ]]; then
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null \
            || die "mariadb-install-db failed"
    fi
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    # slurmdbd connects through the socket; no TCP listener needed.
    setsid /usr/sbin/mariadbd --user=mysql --skip-networking \
        --innodb-buffer-pool-size=256M --innodb-lock-wait-timeout=900 \
        --pid-file="${PIDFILE[mariadb]}" \
        </dev/null >"$LOG_DIR/mariadb.log" 2>&1 &
    db_pid=$!
    until mariadb-admin ping >/dev/null 2>&1; do
        kill -0 "$db_pid" 2>/dev/null || die "mariadbd exited"
        sleep 0.5
    done
    wait_pidfile mariadb && record mariadb
fi
mariadb -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
            ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
            CREATE DATABASE IF NOT EXISTS slurm_acct_db;
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';" \
    || die "could not create the slurm database user"

# -------------------------------------------------------------- 5. slurmdbd
if ! alive slurmdbd; then
    /usr/sbin/slurmdbd </dev/null >/dev/null 2>&1 || die "slurmdbd failed to start"
    wait_pidfile slurmdbd && record slurmdbd
    wait_for 60 "slurmdbd" sacctmgr -n list cluster
fi

# ------------------------------------------------------ 6. slurmctld + slurmd
if ! alive slurmctld; then
    /usr/sbin/slurmctld </dev/null >/dev/null 2>&1 || die "slurmctld failed to start"
    wait_pidfile slurmctld && record slurmctld
    wait_for 60 "slurmctld" scontrol ping
fi
if ! alive slurmd; then
    /usr/sbin/slurmd </dev/null >/dev/null 2>&1 || die "slurmd failed to start"
    wait_pidfile slurmd && record slurmd
fi
# The node is usable once it is idle (or already running jobs).
node_ready() { sinfo -h -n "$HOST" -o %t | grep -qE '^(idle|mix|alloc)'; }
wait_for 60 "node $HOST to become idle" node_ready

# ------------------------------------------------- 7. accounting association
# slurmctld registers the cluster with slurmdbd itself; add it in case it has
# not yet, then the account the tests submit to and the calling user.
sacctmgr -i -Q add cluster "$CLUSTER" >/dev/null 2>&1 || true
if ! sacctmgr -n -P list account "$ACCOUNT" format=account | grep -qx "$ACCOUNT"; then
    sacctmgr -i -Q add account "$ACCOUNT" cluster="$CLUSTER" \
        description="lood test account" organization=lood >/dev/null \
        || die "sacctmgr add account failed"
fi
for user in root ${SUDO_USER:-}; do
    if ! sacctmgr -n -P list assoc user="$user" account="$ACCOUNT" format=user | grep -qx "$user"; then
        sacctmgr -i -Q add user "$user" account="$ACCOUNT" defaultaccount="$ACCOUNT" \
            >/dev/null || die "sacctmgr add user $user failed"
    fi
done
# slurmctld caches associations; give it a moment to receive the new ones.
wait_for 30 "association for root in slurmctld" \
    bash -c "scontrol show assoc_mgr users=root accounts=$ACCOUNT flags=assoc | grep -q 'Account=$ACCOUNT'"

echo "setup_slurm: SLURM up (cluster=$CLUSTER partition=$PARTITION account=$ACCOUNT" \
     "node=$HOST ${NODE_HW% }) in $((SECONDS - t0))s"
