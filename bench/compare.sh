#!/usr/bin/env bash
# Compares edgekeeper with Apache ZooKeeper on this machine and writes the result into
# docs/benchmarks.md, between `<!-- compare:begin -->` and `<!-- compare:end -->` (nothing
# else in that file is touched; the markers are appended when absent).
#
#   bash bench/compare.sh [--quick] [--rows ROW,...] [--topologies 3node,standalone]
#                         [--out FILE] [--no-build] [--keep-tmp]
#   bash bench/compare.sh --render RESULTS.jsonl [--out FILE]
#
# Steps: builds `edgekeeper` (release; CARGO_TARGET_DIR respected), installs Debian's
# `zookeeper` when missing (apt-get, as root or through sudo), then runs two rounds. Each
# round probes the disk and loopback, then runs the suite on a 3-node ZooKeeper ensemble,
# a 3-node edgekeeper ensemble, a standalone ZooKeeper and a standalone edgekeeper, one
# system at a time, so every row runs ZK, EK, ZK, EK. The suite, on fresh servers:
#
#   startup    launch -> first read served, `edgekeeper bench startup` (fresh data each)
#   idle-rss   VmRSS of each server process a few seconds after it serves
#   znodes     create, 32 sessions (100,000 creates of 100 B, kept), then VmRSS per node
#   setdata32  setData, 32 sessions      setdata1  setData, 1 session
#   getdata32  getData, 32 sessions      failover  kill -9 of the leader (3-node only)
#   disk       the fsync and loopback probes (bench/probe.py), once per round
#
# --rows picks some of those (e.g. --rows setdata1,disk); --topologies picks 3node and/or
# standalone. A full run: 5 s warm-up then 10 s per load row, 100,000 znodes, 3 launches
# and 2 kills per round. --quick: 1 s warm-up, 3 s per row, 10,000 znodes, one launch and
# one kill per round; a smoke test of the whole path, not a comparison. --out writes
# elsewhere than docs/benchmarks.md. Every result also lands, one JSON record a line, in
# WORK/results.jsonl; --render turns such a file into the section again.
#
# Servers listen on 127.0.0.1 only, on free ports between 20000 and 32000 (below the
# ephemeral range). Everything lives in a temp dir (WORK, printed at the start), removed
# at the end unless --keep-tmp or a failure. Every process the script starts is stopped
# on exit, Ctrl-C included. Each step has a time limit; on 2 cores a full run takes
# about 20 minutes, --quick about 4.
#
# Needs: bash, python3, coreutils `timeout`, cargo (unless --no-build with
# EDGEKEEPER_BIN), and for the install apt-get.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=bench/servers.sh
source "$here/servers.sh"
SERVERS_DISOWN=1

command_line="bash bench/compare.sh${*:+ $*}"
all_rows=(startup idle-rss znodes setdata32 setdata1 getdata32 failover disk)

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit "${1:-2}"
}

die() {
    echo "compare: $*" >&2
    exit 1
}

say() {
    printf '[compare %4ds] %s\n' "$((SECONDS - started))" "$*" >&2
}

# --- arguments ---------------------------------------------------------------------------
quick=0 rows="" topologies="3node,standalone" out=$root/docs/benchmarks.md build=1
keep_tmp=0 render=""
while (($#)); do
    case $1 in
    --quick) quick=1 ;;
    --rows) rows=${2:?--rows needs a list} && shift ;;
    --rows=*) rows=${1#*=} ;;
    --topologies) topologies=${2:?--topologies needs a list} && shift ;;
    --topologies=*) topologies=${1#*=} ;;
    --out) out=${2:?--out needs a file} && shift ;;
    --out=*) out=${1#*=} ;;
    --no-build) build=0 ;;
    --keep-tmp) keep_tmp=1 ;;
    --render) render=${2:?--render needs a file} && shift ;;
    -h | --help) usage 0 ;;
    *) echo "compare: unknown argument $1" >&2 && usage ;;
    esac
    shift
done
for row in ${rows//,/ }; do
    [[ " ${all_rows[*]} " == *" $row "* ]] || die "unknown row '$row' (rows: ${all_rows[*]})"
done
for topology in ${topologies//,/ }; do
    [[ $topology == 3node || $topology == standalone ]] ||
        die "unknown topology '$topology' (3node, standalone)"
done

if [[ -n $render ]]; then
    python3 "$here/report.py" "$render" "$out"
    echo "compare: wrote $out"
    exit 0
fi

want() {
    [[ -z $rows || ,$rows, == *,$1,* ]]
}

if ((quick)); then
    warmup_s=1 duration_s=3 znodes=10000 znodes_warmup=2000 launches=1 kills=1
    failover_settle_s=2 failover_duration_s=6 settle_s=2 probe_iterations=300
else
    warmup_s=5 duration_s=10 znodes=100000 znodes_warmup=10000 launches=3 kills=2
    failover_settle_s=3 failover_duration_s=10 settle_s=5 probe_iterations=1000
fi
rounds=2
started=$SECONDS

# --- build and install -------------------------------------------------------------------
cd "$root"
# cargo resolves a relative CARGO_TARGET_DIR against the working directory: $root.
target_dir=${CARGO_TARGET_DIR:-target}
[[ $target_dir == /* ]] || target_dir=$root/$target_dir
if ((build)); then
    say "cargo build --release -p edgekeeper"
    cargo build --release -p edgekeeper
    EK=$target_dir/release/edgekeeper
else
    EK=${EDGEKEEPER_BIN:-$target_dir/release/edgekeeper}
fi
[[ -x $EK ]] || die "no edgekeeper binary at $EK"
export EK

if [[ ! -f $zk_jar ]] || ! command -v java >/dev/null; then
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    say "apt-get install zookeeper default-jre-headless"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq zookeeper default-jre-headless >/dev/null
fi
[[ -f $zk_jar ]] || die "$zk_jar still missing after the install"
command -v python3 >/dev/null || die "python3 is needed (probes and the report)"

# --- work dir and cleanup ----------------------------------------------------------------
tmp_parent=${TMPDIR:-/tmp}
if [[ $(stat -f -c %T "$tmp_parent") == tmpfs ]]; then
    # fsync on tmpfs costs nothing: the data dirs must be on a disk.
    tmp_parent=/var/tmp
fi
work=$(mktemp -d "$tmp_parent/ek-compare.XXXXXX")
results=$work/results.jsonl
mkdir -p "$work/logs"
step_pid=""
failed_steps=0

cleanup() {
    local status=$? pidfile
    local -a pids=()
    trap - EXIT INT TERM
    if [[ -n $step_pid ]]; then
        # `timeout` passes the signal on to the bench it runs.
        kill -TERM "$step_pid" 2>/dev/null || true
        wait "$step_pid" 2>/dev/null || true
    fi
    # Every server this script started, directly or through `bench startup`, left its pid
    # in a pid file under $work.
    while IFS= read -r pidfile; do
        pid_is_ours "$(<"$pidfile")" "$work" && pids+=("$(<"$pidfile")")
    done < <(find "$work" -name pid -type f 2>/dev/null)
    ((${#pids[@]} == 0)) || stop_pids "${pids[@]}"
    if ((status == 0 && keep_tmp == 0)); then
        rm -rf "$work"
    else
        echo "compare: logs and results kept in $work" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "work dir $work, edgekeeper $EK"

# --- helpers -----------------------------------------------------------------------------
loadavg() {
    local one five fifteen rest
    read -r one five fifteen rest </proc/loadavg
    echo "$one,$five,$fifteen"
}

json_string() {
    python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"
}

# record ROW DATA_JSON: one result line for the current system, topology and round, with
# the load averages around the step ($load_before, $load_after).
record() {
    printf '{"sys":"%s","topo":"%s","round":%d,"row":"%s","load_before":[%s],"load_after":[%s],"data":%s}\n' \
        "$sys" "$topo" "$round" "$1" "$load_before" "$load_after" "$2" >>"$results"
}

record_error() {
    printf '{"sys":"%s","topo":"%s","round":%d,"row":"%s","load_before":[%s],"load_after":[%s],"error":%s}\n' \
        "$sys" "$topo" "$round" "$1" "$load_before" "$load_after" "$(json_string "$2")" >>"$results"
    failed_steps=$((failed_steps + 1))
    say "FAILED $1: $2"
}

# run_step NAME TIMEOUT_S COMMAND...: runs it under `timeout` in the background (so a
# signal to this script is handled at once), stdout and stderr to logs/NAME.*; sets
# $step_json to the last stdout line, and $load_before/$load_after.
run_step() {
    local name=$1 limit=$2 status=0
    shift 2
    load_before=$(loadavg)
    timeout -k 10 "$limit" "$@" >"$work/logs/$name.out" 2>"$work/logs/$name.err" </dev/null &
    step_pid=$!
    wait "$step_pid" || status=$?
    step_pid=""
    load_after=$(loadavg)
    step_json=$(tail -n 1 "$work/logs/$name.out")
    if ((status != 0)) || [[ $step_json != "{"* ]]; then
        step_error="exit $status"
        ((status != 124)) || step_error+=" (timed out after $limit s)"
        step_error+=": $(tail -n 3 "$work/logs/$name.err" | tr -s '\n ' ' ' | cut -c1-300)"
        return 1
    fi
    return 0
}

# bench_step ROW NAME TIMEOUT_S BENCH_ARGS...: a bench run recorded as ROW.
bench_step() {
    local row=$1 name=$2 limit=$3
    shift 3
    if run_step "$name" "$limit" "$EK" bench "$@"; then
        record "$row" "$step_json"
        say "$name: $(head -n 1 "$work/logs/$name.out" | cut -c1-160)"
        return 0
    fi
    record_error "$row" "$step_error"
    return 1
}

# Ports: a cursor through 20000-31999 that never hands out a port twice in a run, and
# skips every port some socket on this machine uses.
port_next=$((20000 + RANDOM % 6000))
alloc_ports() {
    local n=$1 used p ok tries
    used=" $(awk '$2 ~ /:/ { split($2, a, ":"); print a[2] }' /proc/net/tcp /proc/net/tcp6 \
        /proc/net/udp /proc/net/udp6 2>/dev/null | sort -u | while read -r hex; do
        printf '%d ' "$((16#$hex))"
    done) "
    for ((tries = 0; tries < 2000; tries++)); do
        ((port_next + n <= 32000)) || port_next=20000
        ok=1
        for ((p = port_next; p < port_next + n; p++)); do
            [[ $used == *" $p "* ]] && ok=0 && break
        done
        port_base=$port_next
        port_next=$((port_next + n))
        ((ok)) && return 0
    done
    die "no $n free consecutive ports between 20000 and 32000"
}

# new_instance NAME: configures $sys in topology $topo under $work/NAME, sets $dir.
new_instance() {
    local n=1
    [[ $topo == 3node ]] && n=3
    dir=$work/$1
    alloc_ports $((3 * n))
    case $sys in
    zk) zk_configure "$dir" "$n" "$port_base" $((port_base + n)) $((port_base + 2 * n)) ;;
    ek) ek_configure "$dir" "$n" "$port_base" $((port_base + n)) $((port_base + 2 * n)) ;;
    esac
}

# rss_json DIR [EXTRA]: {"rss_kb":[...],"pids":[...]EXTRA}
rss_json() {
    local dir=$1 extra=${2:-} i pid kb rss="" pid_list=""
    for ((i = 1; i <= $(<"$dir/nodes"); i++)); do
        pid=$(node_pid "$dir" "$i")
        kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        [[ -n $kb ]] || return 1
        rss+="${rss:+,}$kb"
        pid_list+="${pid_list:+,}$pid"
    done
    echo "{\"rss_kb\":[$rss],\"pids\":[$pid_list]$extra}"
}

# servers_followers_first DIR: the client addresses, followers first, the leader last.
servers_followers_first() {
    local addr leader="" others=""
    local -a addrs
    IFS=, read -r -a addrs <"$1/servers"
    for addr in "${addrs[@]}"; do
        if [[ $(node_mode "$addr") == leader ]]; then
            leader=$addr
        else
            others+="${others:+,}$addr"
        fi
    done
    echo "$others${leader:+${others:+,}$leader}"
}

znode_count() {
    local addr=${1%%,*}
    four_letter "$addr" mntr | awk '$1 == "zk_znode_count" { print $2 }'
}

# --- the suite ---------------------------------------------------------------------------
suite_startup() {
    local name=startup-$sys-$topo-r$round addr
    new_instance "$name"
    addr=$(cut -d, -f1 "$dir/servers")
    bench_step startup "$name" $((launches * 90 + 30)) startup \
        --cmd "bash $here/servers.sh fg $dir" --server "$addr" --repeat "$launches" \
        --timeout-s 60 --stop-timeout-s 20 --server-log "$dir/startup.log" || true
    cluster_stop "$dir"
}

suite_failover() {
    local kill pids i pid killed_pid
    for ((kill = 1; kill <= kills; kill++)); do
        pids=""
        for ((i = 1; i <= 3; i++)); do
            pids+="${pids:+,}$(cut -d, -f$i "$dir/servers")=$(node_pid "$dir" "$i")"
        done
        bench_step failover "failover-$sys-r$round-$kill" $((failover_duration_s + 60)) \
            failover --servers "$(<"$dir/servers")" --pids "$pids" \
            --settle-s "$failover_settle_s" --duration-s "$failover_duration_s" || true
        # Restart the killed node (named in the report, else whichever is gone), then wait
        # until the ensemble serves again.
        killed_pid=$(sed -n 's/.*"killed_pid":\([0-9]*\).*/\1/p' <<<"$step_json")
        for ((i = 1; i <= 3; i++)); do
            pid=$(node_pid "$dir" "$i")
            if [[ $pid == "$killed_pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
                wait "$pid" 2>/dev/null || true
                node_start "$dir" "$i"
            fi
        done
        wait_serving "$dir" 120 || return 1
        sleep 1
    done
}

suite_cluster() {
    local name=$sys-$topo-r$round servers ordered extra count
    new_instance "$name"
    servers=$(<"$dir/servers")
    say "$name: starting on $servers"
    load_before=$(loadavg)
    cluster_start "$dir"
    if ! wait_serving "$dir" 120; then
        load_after=$(loadavg)
        record_error idle_rss "$name did not start; see $dir/node-*/server.log"
        cluster_stop "$dir"
        return
    fi
    sleep "$settle_s"
    if want idle-rss; then
        load_before=$(loadavg) load_after=$(loadavg)
        record idle_rss "$(rss_json "$dir")"
    fi
    if want znodes; then
        # A cleaned-up warm-up of creates (JIT, caches), then the creates that stay.
        run_step "znodes-warmup-$name" 300 "$EK" bench load --servers "$servers" \
            --sessions 32 --mix create=100 --keys 1 --value-size 100 --warmup-s 0 \
            --ops "$znodes_warmup" || say "znodes warm-up failed: $step_error"
        if bench_step create32 "znodes-$name" 600 load --servers "$servers" --sessions 32 \
            --mix create=100 --keys 1 --value-size 100 --warmup-s 0 --ops "$znodes" --keep \
            --run-id znodes; then
            sleep 3
            count=$(znode_count "$servers")
            record rss_znodes "$(rss_json "$dir" ",\"znodes\":${count:-null}")"
        fi
    fi
    ordered=$(servers_followers_first "$dir")
    local row sessions mix
    for row in setdata32 setdata1 getdata32; do
        want "$row" || continue
        case $row in
        setdata32) sessions=32 mix=setData=100 ;;
        setdata1) sessions=1 mix=setData=100 ;;
        getdata32) sessions=32 mix=getData=100 ;;
        esac
        bench_step "$row" "$row-$name" $((warmup_s + duration_s + 120)) load \
            --servers "$ordered" --sessions "$sessions" --mix "$mix" --keys 1000 \
            --value-size 100 --warmup-s "$warmup_s" --duration-s "$duration_s" || true
    done
    if [[ $topo == 3node ]] && want failover; then
        suite_failover || record_error failover "$name did not serve again after a kill"
    fi
    cluster_stop "$dir"
    rm -rf "$dir"/node-*/data
}

probe_step() {
    local name=probe-r$round
    sys=machine topo=none
    if run_step "$name" 300 python3 "$here/probe.py" "$work" "$probe_iterations"; then
        record probe "$step_json"
        say "$name: $step_json"
    else
        record_error probe "$step_error"
    fi
}

machine_json() {
    local model mem java_version zk_version ek_version
    model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
    mem=$(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
    java_version=$(java -version 2>&1 | head -n 1)
    zk_version=$(dpkg-query -W -f='${Version}' zookeeper 2>/dev/null || echo unknown)
    ek_version=$("$EK" --version 2>/dev/null | head -n 1 | sed 's/^edgekeeper //')
    printf '{"nproc":%d,"model":%s,"mem":"%s","kernel":"%s","fs":%s,"java":%s,"zookeeper":"%s","edgekeeper":%s}' \
        "$(nproc)" "$(json_string "$model")" "$mem" "$(uname -r)" \
        "$(json_string "$(df -T "$work" | awk 'NR == 2 { print $2 " (" $1 ")" }')")" \
        "$(json_string "$java_version")" "$zk_version" "$(json_string "$ek_version")"
}

# --- run ---------------------------------------------------------------------------------
meta_params=$(printf '{"quick":%s,"rounds":%d,"warmup_s":%s,"duration_s":%s,"znodes":%d,"launches":%d,"kills":%d}' \
    "$( ((quick)) && echo true || echo false)" "$rounds" "$warmup_s" "$duration_s" "$znodes" \
    "$launches" "$kills")
machine=$(machine_json)

for ((round = 1; round <= rounds; round++)); do
    if want disk; then
        probe_step
    fi
    for topo in ${topologies//,/ }; do
        for sys in zk ek; do
            if want startup; then
                suite_startup
            fi
            for row in idle-rss znodes setdata32 setdata1 getdata32 failover; do
                if want "$row" && { [[ $row != failover ]] || [[ $topo == 3node ]]; }; then
                    suite_cluster
                    break
                fi
            done
        done
    done
done

# The meta record goes first, so the report reads it before the runs.
date_now=$(date -u '+%Y-%m-%d %H:%M UTC')
{
    printf '{"row":"meta","sys":"machine","topo":"none","round":0,"date":"%s","elapsed_s":%d,"command":%s,"params":%s,"machine":%s}\n' \
        "$date_now" "$((SECONDS - started))" "$(json_string "$command_line")" "$meta_params" "$machine"
    cat "$results"
} >"$results.tmp"
mv "$results.tmp" "$results"

python3 "$here/report.py" "$results" "$out"
if ((failed_steps > 0)); then
    # The section is written anyway (failed rows say so); the exit status and the kept
    # work dir point at the logs.
    say "wrote $out, but $failed_steps step(s) failed; logs in $work/logs"
    exit 1
fi
say "wrote $out; took $((SECONDS - started)) s"
