#!/usr/bin/env bash
# Regenerates host/edgekeeper/link-order.txt: the functions a node runs, which the linker
# lays out together at the front of `.text` (host/edgekeeper/build.rs), so that an idle
# node keeps little code resident (the kernel maps code in 64 KB windows around each
# page touched).
#
#   bash bench/link-order.sh [--check]
#
# Builds the release binary, then runs it under valgrind's callgrind (which records every
# function executed): a standalone node, and a 3-node cluster twice (the traced node as a
# follower, then as the leader), each through start-up, a few client requests, a short
# `edgekeeper bench load` and some idle ticks. The union of the functions, as the linker
# names them, is the list. Names carry a hash of their crate's build metadata, so the list
# goes stale when dependencies, features or the compiler change; a stale name is skipped at
# link time, so a stale list costs memory, never correctness. --check only reports how
# many names of the current list the release binary still has.
#
# Needs: valgrind (apt-get install valgrind), nm, cargo. Loopback ports 26000-26400.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
list=$root/host/edgekeeper/link-order.txt
target=${CARGO_TARGET_DIR:-$root/target}
bin=$target/release/edgekeeper

(cd "$root" && cargo build -q --release -p edgekeeper)
symbols=$(mktemp)
nm --defined-only "$bin" | awk '$2 ~ /^[tTwW]$/ {print $3}' | sort -u >"$symbols"

if [[ ${1:-} == --check ]]; then
    total=$(wc -l <"$list")
    found=$(sort -u "$list" | comm -12 - "$symbols" | wc -l)
    echo "link-order: $found of $total names found in $bin"
    rm -f "$symbols"
    exit 0
fi
command -v valgrind >/dev/null || {
    echo "link-order: needs valgrind (apt-get install valgrind)" >&2
    exit 1
}

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$work" "$symbols"
}
trap cleanup EXIT

traced() { # OUT CONFIG: serve under callgrind in the background
    valgrind --tool=callgrind --demangle=no --compress-strings=no --compress-pos=no \
        --callgrind-out-file="$1" "$bin" serve --config "$2" >"$1.log" 2>&1 &
    pids+=($!)
}
plain() { # CONFIG
    "$bin" serve --config "$1" >"$1.log" 2>&1 &
    pids+=($!)
}
exercise() { # SERVERS (first one is the traced node)
    local first=${1%%,*} i
    for ((i = 0; i < 120; i++)); do
        "$bin" ctl --server "$first" --timeout-ms 2000 ls / >/dev/null 2>&1 && break
        sleep 1
    done
    "$bin" ctl --server "$first" create /link-order hello >/dev/null
    "$bin" ctl --server "$first" get /link-order >/dev/null
    "$bin" ctl --server "$first" stat /link-order >/dev/null
    "$bin" ctl --server "$first" delete /link-order >/dev/null
    "$bin" bench load --servers "$1" --sessions 4 --mix create=20,setData=30,getData=30,exists=10,multi=10 \
        --keys 50 --warmup-s 0 --ops 400 --request-timeout-ms 60000 >/dev/null
    sleep 12 # idle ticks: session expiry checks, heartbeats, plugin manager
}
stop_all() {
    for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for ((i = 0; i < 60; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    done
    pids=()
}

echo "link-order: standalone" >&2
mkdir -p "$work/sa/data"
cat >"$work/sa/edgekeeper.toml" <<CFG
data_dir = "$work/sa/data"
client_addr = "127.0.0.1:26181"
admin_addr = "127.0.0.1:26080"
CFG
traced "$work/standalone.out" "$work/sa/edgekeeper.toml"
exercise 127.0.0.1:26181
stop_all

"$bin" local-cluster --nodes 3 --dir "$work/lc" --base-client-port 26281 --base-peer-port 26381 \
    --base-admin-port 26291 --no-start >/dev/null
servers=127.0.0.1:26281,127.0.0.1:26282,127.0.0.1:26283
# Node 3 wins an election between equal logs; node 1 follows it.
echo "link-order: 3 nodes, traced follower" >&2
plain "$work/lc/node-3/edgekeeper.toml"
plain "$work/lc/node-2/edgekeeper.toml"
traced "$work/follower.out" "$work/lc/node-1/edgekeeper.toml"
exercise "$servers"
stop_all
echo "link-order: 3 nodes, traced leader" >&2
rm -rf "$work"/lc/node-*/data/*
plain "$work/lc/node-1/edgekeeper.toml"
plain "$work/lc/node-2/edgekeeper.toml"
traced "$work/leader.out" "$work/lc/node-3/edgekeeper.toml"
exercise 127.0.0.1:26283,127.0.0.1:26281,127.0.0.1:26282
stop_all

# Functions of the binary itself (`ob=` names the object), kept if the binary has them.
for out in "$work"/standalone.out "$work"/follower.out "$work"/leader.out; do
    awk -v bin="$bin" '/^ob=/ { ours = (substr($0, 4) == bin) } /^fn=/ && ours { print substr($0, 4) }' "$out"
done | sort -u | comm -12 - "$symbols" >"$list"
echo "link-order: $(wc -l <"$list") functions written to $list" >&2
