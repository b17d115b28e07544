#!/usr/bin/env bash
# Runs one standalone Apache ZooKeeper (Debian package `zookeeper`) in the foreground.
#
# Usage: run-zookeeper.sh PORT DIR
#
# Listens on 127.0.0.1:PORT only, keeps its data, config and log under DIR (created if
# missing; reused when it exists, so a restart on the same DIR keeps the data), whitelists
# every four-letter word, enables TTL nodes (extended types), turns the admin HTTP server
# off, and reaps containers and TTL nodes every 500 ms. Timing matches the config the test
# harness writes for edgekeeper: tick 500 ms, session timeouts between 1 s and 60 s.
# The log goes to stdout. `exec` keeps the PID, so killing it kills the JVM.
# Extra JVM flags may be passed in ZK_JVM_FLAGS.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 PORT DIR" >&2
    exit 2
fi
port=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
mkdir -p "$dir/data"

jar=/usr/share/java/zookeeper.jar
if [[ ! -f $jar ]]; then
    echo "$0: $jar not found; install it with: apt-get install zookeeper default-jre-headless" >&2
    exit 3
fi

# Logging through log4j 1.2 when Debian's bindings are there; silent (slf4j NOP) otherwise.
classpath=$jar
for extra in /usr/share/java/slf4j-log4j12.jar /usr/share/java/log4j-1.2.jar; do
    if [[ -f $extra ]]; then
        classpath=$classpath:$extra
    fi
done

cat >"$dir/zoo.cfg" <<CFG
tickTime=500
minSessionTimeout=1000
maxSessionTimeout=60000
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
maxClientCnxns=0
4lw.commands.whitelist=*
admin.enableServer=false
CFG

cat >"$dir/log4j.properties" <<'LOG'
log4j.rootLogger=INFO, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n
LOG

# shellcheck disable=SC2086 # ZK_JVM_FLAGS is a list of flags.
exec java \
    -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dzookeeper.extendedTypesEnabled=true \
    -Dzookeeper.admin.enableServer=false \
    -Dznode.container.checkIntervalMs=500 \
    -Dzookeeper.jmx.log4j.disable=true \
    "-Dlog4j.configuration=file:$dir/log4j.properties" \
    ${ZK_JVM_FLAGS:-} \
    -cp "$classpath" \
    org.apache.zookeeper.server.ZooKeeperServerMain "$dir/zoo.cfg"
