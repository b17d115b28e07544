#!/usr/bin/env bash
# Starts or stops an Apache ZooKeeper ensemble (Debian package `zookeeper`) on loopback,
# for `edgekeeper bench failover` against the reference implementation.
#
# Usage:
#   zk-ensemble.sh start DIR BASE_PORT [N]   N servers (default 3), in the background
#   zk-ensemble.sh stop DIR                  SIGKILL every server still running
#
# Server i (1..N) listens for clients on 127.0.0.1:BASE_PORT+i, for quorum traffic on
# BASE_PORT+100+i and for elections on BASE_PORT+200+i; its config, data, log and pid file
# live in DIR/zk<i>. Timing matches tests/scripts/run-zookeeper.sh (tick 500 ms). `start`
# waits until one server reports `Mode: leader`, then prints two lines a script can
# `eval`:
#   SERVERS=127.0.0.1:BASE_PORT+1,...
#   PIDS=127.0.0.1:BASE_PORT+1=<pid>,...
# e.g. edgekeeper bench failover --servers "$SERVERS" --pids "$PIDS"
set -euo pipefail

usage() {
    echo "usage: $0 start DIR BASE_PORT [N] | stop DIR" >&2
    exit 2
}

jar=/usr/share/java/zookeeper.jar

srvr() {
    # Prints the answer to `srvr` on 127.0.0.1:$1, or nothing.
    { exec 3<>"/dev/tcp/127.0.0.1/$1" && printf srvr >&3 && cat <&3; } 2>/dev/null || true
}

start() {
    local dir=$1 base=$2 n=$3
    if [[ ! -f $jar ]]; then
        echo "$0: $jar not found; install it with: apt-get install zookeeper default-jre-headless" >&2
        exit 3
    fi
    local classpath=$jar extra
    for extra in /usr/share/java/slf4j-log4j12.jar /usr/share/java/log4j-1.2.jar; do
        [[ -f $extra ]] && classpath=$classpath:$extra
    done
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    local members="" i
    for ((i = 1; i <= n; i++)); do
        members+="server.$i=127.0.0.1:$((base + 100 + i)):$((base + 200 + i))"$'\n'
    done
    local servers="" pids=""
    for ((i = 1; i <= n; i++)); do
        local home=$dir/zk$i
        mkdir -p "$home/data"
        echo "$i" >"$home/data/myid"
        cat >"$home/zoo.cfg" <<CFG
tickTime=500
initLimit=20
syncLimit=10
minSessionTimeout=1000
maxSessionTimeout=60000
dataDir=$home/data
clientPort=$((base + i))
clientPortAddress=127.0.0.1
maxClientCnxns=0
4lw.commands.whitelist=*
admin.enableServer=false
$members
CFG
        cat >"$home/log4j.properties" <<'LOG'
log4j.rootLogger=INFO, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n
LOG
        java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
            -Dzookeeper.admin.enableServer=false \
            -Dzookeeper.jmx.log4j.disable=true \
            "-Dlog4j.configuration=file:$home/log4j.properties" \
            -cp "$classpath" \
            org.apache.zookeeper.server.quorum.QuorumPeerMain "$home/zoo.cfg" \
            >"$home/server.log" 2>&1 </dev/null &
        echo $! >"$home/pid"
        servers+="${servers:+,}127.0.0.1:$((base + i))"
        pids+="${pids:+,}127.0.0.1:$((base + i))=$!"
    done
    local deadline=$((SECONDS + 120))
    until for ((i = 1; i <= n; i++)); do srvr $((base + i)); done | grep -q '^Mode: leader'; do
        if ((SECONDS > deadline)); then
            echo "$0: no leader after 120 s; logs in $dir/zk*/server.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "SERVERS=$servers"
    echo "PIDS=$pids"
}

stop() {
    local dir=$1 pidfile
    for pidfile in "$dir"/zk*/pid; do
        [[ -f $pidfile ]] || continue
        kill -9 "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    done
}

case ${1:-} in
start)
    [[ $# -ge 3 && $# -le 4 ]] || usage
    start "$2" "$3" "${4:-3}"
    ;;
stop)
    [[ $# -eq 2 ]] || usage
    stop "$2"
    ;;
*) usage ;;
esac
