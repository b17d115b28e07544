#!/usr/bin/env python3
"""Normalises a zkCli transcript so runs against different servers can be compared.

Usage: normalize.py COMMANDS_FILE < RAW_OUTPUT > NORMALISED

The raw output is zkCli's stdout and stderr merged, produced by run.py from the commands
in COMMANDS_FILE, with a sentinel `stat /zkcli-step-NNN` before command NNN. Each
sentinel's reply ("Node does not exist: /zkcli-step-NNN") becomes a `> command` line, so the
result reads as a transcript.

What legitimately differs between servers and runs is rewritten, and only that:
- JVM, SLF4J and log4j noise, the connection banner and the client's own connection-state
  events (printed by another thread, so their position varies) are dropped, as are blank
  lines;
- ctime and mtime become <time>;
- zxids become Z1, Z2, ... in order of first appearance, so equal zxids stay equal (a
  parent's pZxid must still be its newest child's cZxid) but their values do not matter;
- session ids in ephemeralOwner become S1, S2, ...; 0x0, container (0x8000000000000000)
  and TTL (0xff...) owners are kept, as they are fixed by the protocol (Apache ZooKeeper
  3.8 shows clients 0x0 for containers and TTL nodes);
- the items of a one-line list (`[b, a]`) are sorted: getEphemerals answers in the server's
  hash order, which no client may rely on.
Everything else - error texts, sequential names, versions, counts, ACLs - is kept.
"""

import re
import sys

SENTINEL = re.compile(r"^Node does not exist: /zkcli-step-(\d+)$")
NOISE = [
    re.compile(r"^SLF4J: "),
    re.compile(r"^log4j:"),
    re.compile(r"^(OpenJDK|Java HotSpot).* warning"),
    re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d"),
    re.compile(r"^Connecting to \S+$"),
    re.compile(r"^Welcome to ZooKeeper!$"),
    re.compile(r"^JLine support is (disabled|enabled)$"),
    re.compile(r"^WATCHER::$"),
    re.compile(r"^WatchedEvent state:(SyncConnected|Closed|Disconnected) type:None path:null$"),
]
TIME = re.compile(r"^(ctime|mtime) = .*$")
ZXID = re.compile(r"^(cZxid|mZxid|pZxid) = (0x[0-9a-fA-F]+)$")
OWNER = re.compile(r"^ephemeralOwner = (0x[0-9a-fA-F]+)$")
LIST = re.compile(r"^\[(.*)\]$")


class Aliases:
    """Gives each distinct value a stable name: prefix + order of first appearance."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.names = {}

    def name(self, value):
        if value not in self.names:
            self.names[value] = f"{self.prefix}{len(self.names) + 1}"
        return self.names[value]


def normalize(raw, commands):
    zxids = Aliases("Z")
    sessions = Aliases("S")
    out = []
    for line in raw.splitlines():
        line = line.rstrip()
        if not line or any(p.search(line) for p in NOISE):
            continue
        m = SENTINEL.match(line)
        if m:
            step = int(m.group(1))
            text = commands[step] if step < len(commands) else "<unknown step>"
            out.append(f"> {text}")
            continue
        if TIME.match(line):
            out.append(f"{line.split(' ', 1)[0]} = <time>")
            continue
        m = ZXID.match(line)
        if m:
            out.append(f"{m.group(1)} = {zxids.name(int(m.group(2), 16))}")
            continue
        m = OWNER.match(line)
        if m:
            owner = int(m.group(1), 16)
            if owner != 0 and owner < 0x8000000000000000:
                line = f"ephemeralOwner = {sessions.name(owner)}"
            out.append(line)
            continue
        m = LIST.match(line)
        if m and m.group(1):
            line = "[" + ", ".join(sorted(m.group(1).split(", "))) + "]"
        out.append(line)
    return "\n".join(out) + "\n"


def read_commands(path):
    with open(path, encoding="utf-8") as f:
        return [c.strip() for c in f if c.strip()]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.stdout.write(normalize(sys.stdin.read(), read_commands(sys.argv[1])))


if __name__ == "__main__":
    main()
