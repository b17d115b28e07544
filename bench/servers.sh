#!/usr/bin/env bash
# Configures, starts and stops the servers bench/compare.sh compares: Apache ZooKeeper
# (Debian's package, with Debian's defaults) and edgekeeper, as an ensemble of N nodes or
# standalone, all on 127.0.0.1. Sourced by compare.sh; run directly it has one command,
#
#   servers.sh fg DIR    start every node configured under DIR on empty data dirs, in the
#                        foreground, until SIGTERM/SIGINT (then stop them and wait)
#
# which is what `edgekeeper bench startup --cmd` launches to time a fresh ensemble.
#
# An instance directory DIR holds `kind` (zk or ek), `nodes` (N) and `servers` (the client
# addresses, comma-separated), and per node DIR/node-<i>/ with its config, data/,
# server.log and pid (of the JVM or of `edgekeeper serve` itself, so a signal reaches the
# server and nothing else).
#
# ZooKeeper runs as Debian's zkServer.sh would run it (JVM flags, JMX local-only, no -Xmx:
# the JVM's own heap sizing) with Debian's zoo.cfg values (tickTime=2000, initLimit=10,
# syncLimit=5), forceSync=yes spelled out (its default: fsync before ack), the admin HTTP
# server off (Debian's classpath lacks javax.servlet, so the packaged server cannot start
# it anyway: it logs a stack trace and goes on without), log4j at INFO to
# DIR/node-<i>/zookeeper.log. edgekeeper runs
# with its defaults (tick_ms 2000; it always fsyncs before acking) and the configs
# `edgekeeper local-cluster --no-start` writes.

zk_jar=/usr/share/java/zookeeper.jar

# zk_configure DIR N CLIENT_BASE QUORUM_BASE ELECTION_BASE
zk_configure() {
    local dir=$1 n=$2 client=$3 quorum=$4 election=$5 i members="" servers=""
    mkdir -p "$dir"
    if ((n > 1)); then
        for ((i = 1; i <= n; i++)); do
            members+="server.$i=127.0.0.1:$((quorum + i - 1)):$((election + i - 1))"$'\n'
        done
    fi
    for ((i = 1; i <= n; i++)); do
        local home=$dir/node-$i
        mkdir -p "$home/data"
        echo "$i" >"$home/data/myid"
        # Debian's /etc/zookeeper/conf/zoo.cfg, then what a second instance on the same box
        # needs (ports, data dir), the four-letter words the bench asks, and forceSync.
        cat >"$home/zoo.cfg" <<CFG
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$home/data
clientPort=$((client + i - 1))
clientPortAddress=127.0.0.1
forceSync=yes
admin.enableServer=false
4lw.commands.whitelist=srvr,mntr,ruok,conf,stat
$members
CFG
        cat >"$home/log4j.properties" <<LOG
log4j.rootLogger=INFO, FILE
log4j.appender.FILE=org.apache.log4j.FileAppender
log4j.appender.FILE.File=$home/zookeeper.log
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n
LOG
        servers+="${servers:+,}127.0.0.1:$((client + i - 1))"
    done
    echo zk >"$dir/kind"
    echo "$n" >"$dir/nodes"
    echo "$servers" >"$dir/servers"
}

# ek_configure DIR N CLIENT_BASE PEER_BASE ADMIN_BASE (with $EK, the binary's path)
ek_configure() {
    local dir=$1 n=$2 client=$3 peer=$4 admin=$5 i servers=""
    mkdir -p "$dir"
    if ((n > 1)); then
        "$EK" local-cluster --nodes "$n" --dir "$dir" --base-client-port "$client" \
            --base-peer-port "$peer" --base-admin-port "$admin" --no-start >"$dir/local-cluster.out"
    else
        mkdir -p "$dir/node-1/data"
        cat >"$dir/node-1/edgekeeper.toml" <<CFG
# Standalone, every key at its default but the addresses and the data dir.
data_dir = "$dir/node-1/data"
client_addr = "127.0.0.1:$client"
admin_addr = "127.0.0.1:$admin"
CFG
    fi
    for ((i = 1; i <= n; i++)); do
        [[ -f $dir/node-$i/edgekeeper.toml ]] || {
            echo "servers.sh: no $dir/node-$i/edgekeeper.toml" >&2
            return 1
        }
        servers+="${servers:+,}127.0.0.1:$((client + i - 1))"
    done
    echo "$EK" >"$dir/binary"
    echo ek >"$dir/kind"
    echo "$n" >"$dir/nodes"
    echo "$servers" >"$dir/servers"
}

# node_start DIR I: starts node I in the background; its pid goes to DIR/node-I/pid.
node_start() {
    local dir=$1 i=$2 home=$1/node-$2
    case $(<"$dir/kind") in
    zk)
        local classpath=$zk_jar extra
        # Debian's CLASSPATH has no slf4j binding (ZooKeeper would log nothing); log4j 1.2
        # at INFO to a file keeps the logs for when something fails.
        for extra in /usr/share/java/slf4j-log4j12.jar /usr/share/java/log4j-1.2.jar; do
            [[ -f $extra ]] && classpath=$classpath:$extra
        done
        (
            cd "$home" || exit 1
            exec java "-Dzookeeper.log.dir=$home" -Dzookeeper.log.file=zookeeper.log \
                -XX:+HeapDumpOnOutOfMemoryError "-XX:OnOutOfMemoryError=kill -9 %p" \
                -cp "$classpath" \
                -Dcom.sun.management.jmxremote -Dcom.sun.management.jmxremote.local.only=true \
                "-Dlog4j.configuration=file:$home/log4j.properties" \
                org.apache.zookeeper.server.quorum.QuorumPeerMain "$home/zoo.cfg"
        ) >>"$home/server.log" 2>&1 </dev/null &
        ;;
    ek)
        "$(<"$dir/binary")" serve --config "$home/edgekeeper.toml" >>"$home/server.log" 2>&1 </dev/null &
        ;;
    esac
    local pid=$!
    echo "$pid" >"$home/pid"
    # A script that stops its servers itself (compare.sh) disowns them, so bash does not
    # print a "Killed" line for each kill -9; `fg` keeps them, to `wait` for them.
    if [[ ${SERVERS_DISOWN:-0} == 1 ]]; then
        disown "$pid"
    fi
}

# node_wipe DIR I: empties node I's data dir (ZooKeeper's myid stays).
node_wipe() {
    local data=$1/node-$2/data
    mkdir -p "$data"
    find "$data" -mindepth 1 -maxdepth 1 ! -name myid -exec rm -rf {} +
}

# node_pid DIR I
node_pid() {
    cat "$1/node-$2/pid" 2>/dev/null
}

# stop_pids PID...: SIGTERM, up to 15 s to exit, then SIGKILL; reaps those that are our
# children.
stop_pids() {
    local pid alive waited
    kill -TERM "$@" 2>/dev/null || true
    for ((waited = 0; waited < 150; waited++)); do
        alive=0
        for pid in "$@"; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        ((alive)) || break
        sleep 0.1
    done
    kill -KILL "$@" 2>/dev/null || true
    for pid in "$@"; do
        wait "$pid" 2>/dev/null || true
    done
}

# pid_is_ours PID DIR: whether PID runs and names DIR on its command line (a pid file
# left behind by a dead server must not make us signal whoever got its pid since).
pid_is_ours() {
    [[ -n $1 && -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "$2"
}

# node_stop DIR I
node_stop() {
    local pidfile=$1/node-$2/pid
    [[ -f $pidfile ]] || return 0
    if pid_is_ours "$(<"$pidfile")" "$1"; then
        stop_pids "$(<"$pidfile")"
    fi
    rm -f "$pidfile"
}

cluster_start() {
    local dir=$1 i
    for ((i = 1; i <= $(<"$dir/nodes"); i++)); do
        node_start "$dir" "$i"
    done
}

# cluster_stop DIR: every node at once.
cluster_stop() {
    local dir=$1 pidfile
    local -a pids=()
    for pidfile in "$dir"/node-*/pid; do
        [[ -f $pidfile ]] && pid_is_ours "$(<"$pidfile")" "$dir" && pids+=("$(<"$pidfile")")
    done
    ((${#pids[@]} == 0)) || stop_pids "${pids[@]}"
    rm -f "$dir"/node-*/pid
}

# four_letter ADDR WORD: the answer, or nothing within 2 s.
four_letter() {
    local host=${1%:*} port=${1##*:}
    # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf %s "$2" >&3 && cat <&3' \
        "$host" "$port" "$2" 2>/dev/null || true
}

# node_mode ADDR: leader, follower, standalone... from `srvr`, or nothing.
node_mode() {
    four_letter "$1" srvr | sed -n 's/^Mode: //p' | tr -d '\r'
}

# wait_serving DIR TIMEOUT_S: until every node serves (one leader in an ensemble).
wait_serving() {
    local dir=$1 deadline=$((SECONDS + $2)) addr modes leaders
    local -a addrs
    IFS=, read -r -a addrs <"$dir/servers"
    while :; do
        modes=""
        for addr in "${addrs[@]}"; do
            modes+="$(node_mode "$addr")"$'\n'
        done
        leaders=$(grep -cx 'leader\|standalone' <<<"$modes" || true)
        if ((leaders == 1)) && (($(grep -cx 'leader\|follower\|standalone' <<<"$modes") == ${#addrs[@]})); then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            echo "servers.sh: $dir not serving after $2 s; modes: $(tr '\n' ' ' <<<"$modes")" >&2
            return 1
        fi
        sleep 0.2
    done
}

# fg DIR: fresh data, every node started, stopped again on SIGTERM/SIGINT.
fg() {
    local dir=$1 n i
    n=$(<"$dir/nodes")
    for ((i = 1; i <= n; i++)); do
        node_wipe "$dir" "$i"
    done
    trap 'cluster_stop "$dir"; exit 0' TERM INT
    cluster_start "$dir"
    # A signal ends `wait` at once and runs the trap; without one, `wait` returns when
    # every node has exited.
    wait
    echo "servers.sh: every node of $dir exited" >&2
    exit 1
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    case ${1:-} in
    fg)
        [[ $# -eq 2 ]] || {
            echo "usage: $0 fg DIR" >&2
            exit 2
        }
        fg "$2"
        ;;
    *)
        echo "usage: $0 fg DIR (the rest is sourced by compare.sh)" >&2
        exit 2
        ;;
    esac
fi
