#!/usr/bin/env python3
"""Renders the results of bench/compare.sh (one JSON record a line) as the generated
section of docs/benchmarks.md, between `<!-- compare:begin -->` and `<!-- compare:end -->`.
Text outside the markers is never changed; the markers are appended to the end of the file
when absent.

Usage: report.py RESULTS.jsonl DOC.md

Record kinds (field "row"): "meta" (parameters, machine), "probe" (bench/probe.py's
report), and one per measured run: "startup", "idle_rss", "create32", "rss_znodes",
"setdata32", "setdata1", "getdata32", "failover" (one per kill). A run that failed has
"error" instead of "data".
"""

import json
import statistics
import sys

BEGIN = "<!-- compare:begin -->"
END = "<!-- compare:end -->"

SYSTEMS = ("zk", "ek")
TOPOLOGIES = {"3node": "3-node ensemble", "standalone": "standalone"}
SYSTEM_NAMES = {"zk": "ZooKeeper", "ek": "edgekeeper", "machine": "machine"}

# (measure key, label, kind, target): kind says how to pick and print the figure; a target
# is (comparison, ratio EK/ZK).
MEASURES = [
    ("setdata32.ops", "setData, 32 sessions: throughput", "ops", (">=", 2.0)),
    ("setdata32.p50", "setData, 32 sessions: p50", "ms", None),
    ("setdata32.p99", "setData, 32 sessions: p99", "ms", ("<=", 0.5)),
    ("setdata1.ops", "setData, 1 session: throughput", "ops", None),
    ("setdata1.p50", "setData, 1 session: p50", "ms", ("<=", 0.5)),
    ("setdata1.floor", None, "floor", None),
    ("create32.ops", "create, 32 sessions: throughput", "ops", None),
    ("getdata32.ops", "getData, 32 sessions: throughput", "ops", (">=", 2.0)),
    ("getdata32.p99", "getData, 32 sessions: p99", "ms", None),
    ("startup", "launch → first read served", "startup", ("<=", 0.1)),
    ("idle_rss", "idle memory (RSS) per node", "rss", ("<=", 0.1)),
    ("rss_znodes", None, "rss", ("<=", 0.1)),
    ("failover", "kill -9 of the leader → writes flow again", "failover", ("<=", 0.5)),
]

LOAD_ROWS = ("setdata32", "setdata1", "getdata32", "create32")


def load_records(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def ms(value):
    """A latency in ms with three significant digits."""
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    if value >= 1:
        return f"{value:.2f} ms"
    return f"{value:.3f} ms"


def mib(kib):
    return f"{kib / 1024:,.1f} MiB"


def ratio_text(ratio):
    if ratio is None:
        return "—"
    if ratio >= 10:
        return f"{ratio:.0f}×"
    if ratio >= 0.1:
        return f"{ratio:.2f}×"
    return f"{ratio:.3f}×"


def runs(records, row, system, topology):
    return [
        record
        for record in records
        if record["row"] == row and record["sys"] == system and record["topo"] == topology
    ]


def best_load(records, row, system, topology):
    """The load run with the higher throughput (the better of the runs), or None."""
    done = [r for r in runs(records, row, system, topology) if "data" in r]
    if not done:
        return None
    return max(done, key=lambda r: r["data"]["throughput_ops_s"])


def figure(records, key, system, topology):
    """(number, text) for one measure of one system, or (None, why)."""
    base, _, field = key.partition(".")
    if base in LOAD_ROWS:
        best = best_load(records, base, system, topology)
        if best is None:
            return None, missing(records, base, system, topology)
        data = best["data"]
        if field == "ops":
            value = data["throughput_ops_s"]
            return value, f"{value:,.0f} ops/s"
        value = data[f"{field}_ms"]
        return value, ms(value)
    if base == "startup":
        launches = [
            ms_value
            for r in runs(records, "startup", system, topology)
            if "data" in r
            for ms_value in r["data"]["launch_to_read_ms"]
        ]
        if not launches:
            return None, missing(records, base, system, topology)
        value = statistics.median(launches)
        return value, f"{ms(value)} ({ms(min(launches))}–{ms(max(launches))}, {len(launches)} launches)"
    if base in ("idle_rss", "rss_znodes"):
        per_run = [
            statistics.mean(r["data"]["rss_kb"])
            for r in runs(records, base, system, topology)
            if "data" in r
        ]
        if not per_run:
            return None, missing(records, base, system, topology)
        value = min(per_run)
        return value, mib(value)
    if base == "failover":
        kills = [
            r["data"]["kill_to_first_write_ms"]
            for r in runs(records, "failover", system, topology)
            if "data" in r
        ]
        recovered = [k for k in kills if k is not None]
        if not kills:
            return None, missing(records, base, system, topology)
        if len(recovered) < len(kills):
            return None, f"{len(kills) - len(recovered)} of {len(kills)} kills never recovered"
        value = statistics.median(recovered)
        return value, f"{ms(value)} ({ms(min(recovered))}–{ms(max(recovered))}, {len(recovered)} kills)"
    raise ValueError(key)


def missing(records, row, system, topology):
    failed = [r for r in runs(records, row, system, topology) if "error" in r]
    return "failed" if failed else "not run"


def probe_best(records, name):
    """The lowest p50 over the probe runs, with that run's p99."""
    probes = [r["data"][name] for r in records if r["row"] == "probe" and "data" in r]
    if not probes:
        return None
    return min(probes, key=lambda p: p["p50_ms"])


def floor_ms(records, topology):
    """fsync p50 plus the loopback round trips of one durable write at one session."""
    fsync = probe_best(records, "fsync_4k")
    rtt = probe_best(records, "loopback_rtt")
    if fsync is None or rtt is None:
        return None, 0
    trips = 3 if topology == "3node" else 1
    return fsync["p50_ms"] + trips * rtt["p50_ms"], trips


def check(target, ratio):
    if target is None or ratio is None:
        return "—", "—"
    comparison, bound = target
    met = ratio >= bound if comparison == ">=" else ratio <= bound
    sign = "≥" if comparison == ">=" else "≤"
    return f"{sign} {bound:g}×", "yes" if met else "**no**"


def table(records, topology, meta):
    lines = [
        "| measure | ZooKeeper | edgekeeper | ratio (EK/ZK) | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    znodes = meta.get("znodes", 100000)
    verdicts = []
    for key, label, kind, target in MEASURES:
        if key == "failover" and topology != "3node":
            continue
        if kind == "floor":
            line = floor_line(records, topology)
            if line.endswith("| yes |") or line.endswith("| **no** |"):
                verdicts.append(line.endswith("| yes |"))
            lines.append(line)
            continue
        if key == "rss_znodes":
            label = f"RSS per node after {znodes:,} znodes of 100 B"
        zk_value, zk_text = figure(records, key, "zk", topology)
        ek_value, ek_text = figure(records, key, "ek", topology)
        ratio = ek_value / zk_value if zk_value and ek_value is not None else None
        target_text, met = check(target, ratio)
        if met != "—":
            verdicts.append(met == "yes")
        lines.append(
            f"| {label} | {zk_text} | {ek_text} | {ratio_text(ratio)} | {target_text} | {met} |"
        )
    if verdicts:
        lines += ["", f"Targets met: {sum(verdicts)} of {len(verdicts)}."]
    return lines


def floor_line(records, topology):
    floor, trips = floor_ms(records, topology)
    zk_value, _ = figure(records, "setdata1.p50", "zk", topology)
    ek_value, _ = figure(records, "setdata1.p50", "ek", topology)
    label = (
        f"setData, 1 session: p50 ÷ durable-write floor (fsync p50 + {trips} loopback "
        f"round trip{'s' if trips > 1 else ''} = {ms(floor)})"
    )
    if floor is None:
        return f"| {label} | — | — | — | EK ≤ 2× | — |"

    def over(value):
        return f"{value / floor:.2f}×" if value is not None else "—"

    met = "—" if ek_value is None else ("yes" if ek_value <= 2 * floor else "**no**")
    return f"| {label} | {over(zk_value)} | {over(ek_value)} | — | EK ≤ 2× floor | {met} |"


def probe_table(records):
    probes = [r for r in records if r["row"] == "probe"]
    lines = [
        "| probe (same for both systems) | " + " | ".join(f"round {p['round']}" for p in probes) + " |",
        "|---|" + "---|" * len(probes),
    ]
    names = [
        ("fsync_4k", "4 KiB append + fdatasync: p50 / p99"),
        ("fsync_100b", "100 B append + fdatasync: p50 / p99"),
        ("loopback_rtt", "loopback TCP round trip (python echo): p50 / p99"),
    ]
    for name, label in names:
        cells = []
        for probe in probes:
            if "data" not in probe:
                cells.append("failed")
                continue
            figures = probe["data"][name]
            cells.append(f"{ms(figures['p50_ms'])} / {ms(figures['p99_ms'])}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def run_result(record):
    if "error" in record:
        return f"failed: {record['error']}"
    data = record["data"]
    row = record["row"]
    if row in LOAD_ROWS:
        return (
            f"{data['throughput_ops_s']:,.0f} ops/s, p50 {ms(data['p50_ms'])}, "
            f"p99 {ms(data['p99_ms'])}, {data['ops']:,} ops, {data['errors']} errors"
        )
    if row == "startup":
        return ", ".join(ms(v) for v in data["launch_to_read_ms"])
    if row in ("idle_rss", "rss_znodes"):
        text = ", ".join(mib(v) for v in data["rss_kb"])
        if "znodes" in data:
            text += f" ({data['znodes']:,} znodes by mntr)"
        return text
    if row == "failover":
        first = data["kill_to_first_write_ms"]
        return (
            f"killed {data['killed_mode']} {data['killed']}, first write after "
            f"{ms(first) if first is not None else 'never'}, longest gap "
            f"{ms(data['longest_gap_ms'])}, new leader {data['new_leader']}"
        )
    if row == "probe":
        return (
            f"4 KiB fsync p50 {ms(data['fsync_4k']['p50_ms'])}, 100 B fsync p50 "
            f"{ms(data['fsync_100b']['p50_ms'])}, loopback p50 {ms(data['loopback_rtt']['p50_ms'])}"
        )
    return json.dumps(data)


ROW_NAMES = {
    "probe": "disk and loopback probes",
    "startup": "launch → first read",
    "idle_rss": "idle RSS per node",
    "create32": "create, 32 sessions",
    "rss_znodes": "RSS per node after the creates",
    "setdata32": "setData, 32 sessions",
    "setdata1": "setData, 1 session",
    "getdata32": "getData, 32 sessions",
    "failover": "kill -9 of the leader",
}


def runs_table(records):
    lines = [
        "| round | system | topology | measure | result | load avg (1/5/15 min) before → after |",
        "|---|---|---|---|---|---|",
    ]
    for record in records:
        if record["row"] == "meta":
            continue
        before = "/".join(f"{v:.2f}" for v in record["load_before"])
        after = "/".join(f"{v:.2f}" for v in record["load_after"])
        topology = TOPOLOGIES.get(record["topo"], "—")
        lines.append(
            f"| {record['round']} | {SYSTEM_NAMES[record['sys']]} | {topology} | "
            f"{ROW_NAMES.get(record['row'], record['row'])} | {run_result(record)} | "
            f"{before} → {after} |"
        )
    return lines


def load_range(records):
    values = [
        value
        for record in records
        if record["row"] != "meta"
        for value in (record["load_before"][0], record["load_after"][0])
    ]
    if not values:
        return "—"
    return f"{min(values):.2f}–{max(values):.2f}"


def section(records):
    meta = next((r for r in records if r["row"] == "meta"), {})
    params = meta.get("params", {})
    machine = meta.get("machine", {})
    lines = [
        BEGIN,
        "",
        "## ZooKeeper and edgekeeper side by side (`bench/compare.sh`)",
        "",
        "_Generated by `bench/compare.sh`; edit the script, not this section._",
        "",
    ]
    if params.get("quick"):
        lines += [
            "**Quick run (`--quick`): a smoke test with short runs and fewer znodes; these "
            "figures are not the comparison.**",
            "",
        ]
    lines += [
        f"- Date: {meta.get('date', '—')} (took {meta.get('elapsed_s', '—')} s)",
        f"- Machine: {machine.get('nproc', '?')} cores ({machine.get('model', '?')}), "
        f"{machine.get('mem', '?')} RAM, kernel {machine.get('kernel', '?')}, data dirs on "
        f"{machine.get('fs', '?')}",
        f"- ZooKeeper {machine.get('zookeeper', '?')} (Debian package), "
        f"{machine.get('java', '?')}; edgekeeper {machine.get('edgekeeper', '?')} (release build)",
        f"- Command: `{meta.get('command', 'bash bench/compare.sh')}`",
        f"- Load average (1 min) seen over the runs: {load_range(records)}, the benchmark's "
        "own servers and load generator included (per run below)",
        "",
    ]
    for topology, name in TOPOLOGIES.items():
        if not any(r.get("topo") == topology for r in records):
            continue
        lines += [f"### {name}", ""] + table(records, topology, params) + [""]
    if any(r["row"] == "probe" for r in records):
        lines += ["### Machine probes", ""] + probe_table(records) + [""]
    lines += ["### How it was measured", ""] + notes(params) + [""]
    lines += [
        "<details><summary>Every run, in the order run, with the load average</summary>",
        "",
    ]
    lines += runs_table(records)
    lines += ["", "</details>", "", END]
    return "\n".join(lines) + "\n"


def notes(params):
    warmup = params.get("warmup_s", "?")
    duration = params.get("duration_s", "?")
    znodes = params.get("znodes", 100000)
    rounds = params.get("rounds", 2)
    return [
        f"- Order: {rounds} rounds, each running every measure on ZooKeeper, then on "
        "edgekeeper (3-node ensembles first, then standalone), so each row ran ZK, EK, ZK, "
        "EK. Only one system runs at a time. A figure is the better of the two runs (the "
        "run with the higher throughput, with its latencies; the lower RSS); launch times "
        "and failovers are the median (and range) over every launch or kill of both rounds.",
        "- Load (`edgekeeper bench load`, the same binary against both): closed loop (one "
        "request in flight per session), 100-byte values, 1,000 keys, sessions round-robin "
        f"over the servers, {warmup} s warm-up then {duration} s measured. The server list "
        "puts the followers first and the leader last in both systems, so in an ensemble "
        "the single session of the 1-session rows talks to a follower (its write is "
        "forwarded), and the 32 sessions split 11/11/10 with 10 on the leader. The load "
        "generator shares the machine's cores with the servers.",
        f"- create and RSS: a cleaned-up warm-up of creates, then {znodes:,} creates of 100 "
        "B by 32 sessions (throughput of those is the create row) kept in the tree; the "
        "RSS after them is read 3 s later from `/proc/<pid>/status` (VmRSS) of each server "
        "process (the JVM for ZooKeeper) and averaged over the nodes. Idle RSS is read the "
        "same way a few seconds after the fresh cluster serves.",
        "- Launch → first read: `edgekeeper bench startup` launches every node of a fresh "
        "instance (empty data dirs; edgekeeper's certificates already written) through "
        "`bench/servers.sh fg`, and probes node 1 (connect, handshake, getData /) every 10 "
        "ms; in an ensemble a follower serves once it has synced with the elected leader.",
        "- Failover: `edgekeeper bench failover`, 8 writers at 200 setData/s in all, "
        "SIGKILL to the process answering `Mode: leader`; the figure is kill → reply to "
        "the first write sent after the kill (`kill_to_first_write_ms`). The killed node is "
        "restarted and rejoins before the next kill.",
        "- Durability: both fsync before acknowledging. ZooKeeper: `forceSync=yes` (the "
        "default, written out in zoo.cfg); edgekeeper has no switch to turn it off "
        "(group commit, fdatasync). The floor is the disk probe's best 4 KiB fdatasync "
        "p50 plus the loopback round trips of one write (1 standalone; 3 in an ensemble: "
        "client → follower → leader → follower ack → commit → client).",
        "- ZooKeeper settings: Debian's zoo.cfg (tickTime=2000, initLimit=10, syncLimit=5), "
        "maxClientCnxns 60 (default), the JVM flags of Debian's zkServer.sh and no -Xmx "
        "(JVM ergonomics: G1, heap up to a quarter of RAM), admin HTTP server off (Debian's "
        "classpath cannot start it anyway), log4j at INFO to a file. edgekeeper: defaults "
        "(tick_ms 2000; ensemble: zab_tick_ms 50 × sync_limit_ticks 4 = 200 ms failure "
        "detection, QUIC + mutual TLS between nodes), log at info to a file.",
        "- The disk probe (`bench/probe.py`) appends to a fresh file on the filesystem of "
        "the data dirs: with 4 KiB appends every fdatasync also commits a block allocation "
        "(ext4 journal); with 100 B appends most fdatasyncs do not. On this virtual disk "
        "the two can differ by 20×, and which one a server pays depends on how its log "
        "allocates space.",
    ]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    records = load_records(sys.argv[1])
    generated = section(records)
    path = sys.argv[2]
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        text = ""
    begin = text.find(BEGIN)
    end = text.find(END)
    if begin != -1 and end != -1 and end > begin:
        text = text[:begin] + generated.rstrip("\n") + text[end + len(END):]
        if not text.endswith("\n"):
            text += "\n"
    elif begin == -1 and end == -1:
        if text and not text.endswith("\n"):
            text += "\n"
        text += ("\n" if text else "") + generated
    else:
        sys.exit(f"{path}: the markers {BEGIN} and {END} are not a begin/end pair")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


if __name__ == "__main__":
    main()
