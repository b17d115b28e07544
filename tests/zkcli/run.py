#!/usr/bin/env python3
"""Runs the zkCli golden session against a server and prints the normalised transcript.

Usage: run.py HOST:PORT [--raw FILE]

Pipes commands.txt into `zkCli.sh -server HOST:PORT` (found in $ZKCLI, else the Debian
path), with a sentinel `stat /zkcli-step-NNN` before each command so the normaliser can
label the output. Prints the result of normalize.py; --raw also saves the raw output.
Exits 3 when zkCli is not installed, 4 when zkCli does not finish within 120 s, else 0
(zkCli's own exit code is that of its last command, here a failing sentinel).
"""

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, HERE)
import normalize  # noqa: E402

DEBIAN_ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"


def find_zkcli():
    for candidate in (os.environ.get("ZKCLI"), DEBIAN_ZKCLI, shutil.which("zkCli.sh")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def main():
    args = sys.argv[1:]
    if len(args) not in (1, 3) or (len(args) == 3 and args[1] != "--raw"):
        sys.exit(__doc__)
    server = args[0]
    zkcli = find_zkcli()
    if zkcli is None:
        print("zkCli.sh not found (apt-get install zookeeper)", file=sys.stderr)
        sys.exit(3)
    commands = normalize.read_commands(os.path.join(HERE, "commands.txt"))
    script = "".join(f"stat /zkcli-step-{i:03}\n{c}\n" for i, c in enumerate(commands))
    try:
        done = subprocess.run(
            [zkcli, "-server", server],
            input=script,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            env=dict(os.environ, CLIENT_JVMFLAGS="-Xmx128m -XX:TieredStopAtLevel=1"),
        )
    except subprocess.TimeoutExpired:
        print("zkCli did not finish within 120 s", file=sys.stderr)
        sys.exit(4)
    if len(args) == 3:
        with open(args[2], "w", encoding="utf-8") as f:
            f.write(done.stdout)
    sys.stdout.write(normalize.normalize(done.stdout, commands))


if __name__ == "__main__":
    main()
