#!/usr/bin/env bash
# Memory and load time of plugins in a real node: starts a standalone release node,
# installs the five example plugins, prints VmRSS after none, one and five, restarts the
# node (plugins now load from the on-disk compile cache) and prints VmRSS and the per-plugin
# compile/load times from the node's log. Usage: bash bench/plugin-memory.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build -q --release -p edgekeeper
CARGO_TARGET_DIR="$target/guests" cargo build -q --release --target wasm32-wasip2 \
    --manifest-path guest-plugins/Cargo.toml
EK="$target/release/edgekeeper"
W="$target/guests/wasm32-wasip2/release"
G=guest-plugins
D=$(mktemp -d -t ek-plugin-memory-XXXXXX)
mkdir -p "$D/out"
cat > "$D/ek.toml" <<EOT
data_dir = "$D/data"
client_addr = "127.0.0.1:23181"
admin_addr = "127.0.0.1:29080"
[log]
format = "json"
EOT
S=(--server 127.0.0.1:23181)
rss() { awk '/VmRSS/ {print $2 " KiB"}' "/proc/$1/status"; }
"$EK" serve --config "$D/ek.toml" > "$D/log1.txt" 2>&1 & P=$!
sleep 2; echo "no plugin:            $(rss $P)"
"$EK" plugin install "$W/health_rollup.wasm" --manifest $G/examples/health-rollup/manifest.toml "${S[@]}" >/dev/null
sleep 2; echo "one plugin:           $(rss $P)"
for p in hpa-policy hysteresis-policy service-registrar; do
    "$EK" plugin install "$W/${p//-/_}.wasm" --manifest "$G/examples/$p/manifest.toml" "${S[@]}" >/dev/null
done
sed "s|/var/lib/edgekeeper/config/web|$D/out|" $G/examples/config-file-sync/manifest.toml > "$D/cfs.toml"
"$EK" plugin install "$W/config_file_sync.wasm" --manifest "$D/cfs.toml" "${S[@]}" >/dev/null
sleep 3; echo "five plugins:         $(rss $P)"
kill $P; wait $P 2>/dev/null || true
"$EK" serve --config "$D/ek.toml" > "$D/log2.txt" 2>&1 & P=$!
sleep 3; echo "five, after restart:  $(rss $P)"
kill $P; wait $P 2>/dev/null || true
for log in log1 log2; do
    echo "$log:"
    grep -o '"plugin":"[a-z-]*","from_cache":[a-z]*,"compile_ms":[0-9]*,"load_ms":[0-9]*' "$D/$log.txt" || true
done
rm -rf "$D"
