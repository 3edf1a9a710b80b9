#!/usr/bin/env bash
# Scale-out figures on one machine (issue #14): the `openssl speed` bound, then the same load
# (scep-load, RSA-2048 PKCSReqs, LEVELS concurrencies) against
#   1. one scepd node on SQLite (the embedded default, synchronous=FULL),
#   2. one scepd node on PostgreSQL (a throw-away cluster from scripts/pg-cluster, fsync on),
#   3. three scepd nodes on that PostgreSQL sharing one data dir, the load tool's workers
#      spread round-robin over them (as a load balancer spreads connections).
# Prints a table: enrollments/s, the ratio to the bound, p99, scepd CPU per enrollment (all
# nodes), PostgreSQL CPU per enrollment and the machine's idle share. On one machine the nodes,
# the database and the load tool share the same cores: (3) shows the cost of coordination,
# not added capacity, which needs more machines.
#
#   benches/cluster-compare.sh                  # COUNT=1500 DURATION=8 LEVELS=8,32
#   COUNT=3000 LEVELS=2,8,32 benches/cluster-compare.sh
#
# Bounded: each level stops at COUNT requests or DURATION seconds; every process it starts is
# stopped by PID on exit (the database also by its watchdog). Needs PostgreSQL's server
# binaries (scripts/test installs them).
set -euo pipefail

COUNT=${COUNT:-1500}
DURATION=${DURATION:-8}
LEVELS=${LEVELS:-8,32}
SPEED_SECS=${SPEED_SECS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CPUS=$(nproc)

echo "building scepd and the load tool (release)..." >&2
(cd "$ROOT" && cargo build --release --locked --bin scepd --example scep-load 2>&1 | tail -1) >&2
SCEPD="$ROOT/target/release/scepd"
LOAD="$ROOT/target/release/examples/scep-load"

WORK=$(mktemp -d /tmp/scepd-cluster.XXXXXX)
chmod 0755 "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ -n "${PG_PID:-}" ]] && kill -INT "$PG_PID" 2>/dev/null || true
    sleep 1
    rm -rf "$WORK"
}
trap cleanup EXIT
RESULTS="$WORK/results.tsv"
: >"$RESULTS"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== machine"
echo "$(lscpu | sed -n 's/^Model name: *//p') | ${CPUS} CPUs | $(uname -r) | load $(cut -d' ' -f1-3 /proc/loadavg)"
speed() { # alg multi -> ops/s (machine-readable total line)
    openssl speed -mr -seconds "$SPEED_SECS" ${2:+-multi "$2"} "$1" 2>/dev/null \
        | grep -E '^\+F[0-9]+:' | tail -1 | awk -F: '{print $4}'
}
RSAN=$(speed rsa2048 "$CPUS")
# One enrollment = RA decrypt + certificate signature + CertRep signature.
BOUND=$(awk -v r="$RSAN" 'BEGIN{printf "%.0f", r/3}')
echo "RSA-2048 private ops/s on $CPUS cores: $RSAN; bound: $BOUND enrollments/s"

echo "== PostgreSQL"
mkdir -p "$WORK/pg"
PG_PORT=$(free_port)
PG_PID=$("$ROOT/scripts/pg-cluster" "$WORK/pg" "$PG_PORT" $$ | sed -n 's/^ready //p')
PG_PASSWORD=$(cat "$WORK/pg/password")
PG_BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/psql | tail -1)")
"$PG_BIN/postgres" --version
createdb() { PGPASSWORD=$PG_PASSWORD "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U scepd -d postgres -c "CREATE DATABASE $1"; }

# CPU seconds of every postgres process (the postmaster's children come and go with the pool).
pg_cpu() {
    local t=0 f
    for f in /proc/[0-9]*/stat; do
        read -r line <"$f" 2>/dev/null || continue
        [[ "$line" == *"(postgres)"* ]] || continue
        set -- ${line##*) }
        t=$((t + ${12} + ${13}))
    done
    awk -v t="$t" 'BEGIN{printf "%.2f", t/100}'
}

start_node() { # name data_dir store_url(or "") -> NODE_PID NODE_ADDR; first start prints JSON
    local dir="$WORK/$1" port
    mkdir -p "$dir"
    port=$(free_port)
    printf '[limits]\npki_operation_per_minute = 0\n' >"$dir/scepd.toml"
    local env=()
    [[ -n "$3" ]] && env=(SCEPD_STORE_URL="$3" SCEPD_STORE_PASSWORD="$PG_PASSWORD")
    env "${env[@]}" SCEPD_LOG=warn "$SCEPD" serve --json --listen "127.0.0.1:$port" \
        --admin-listen 127.0.0.1:0 --data-dir "$2" --config "$dir/scepd.toml" \
        >"$dir/out" 2>"$dir/log" &
    NODE_PID=$!
    PIDS+=("$NODE_PID")
    NODE_ADDR="127.0.0.1:$port"
    for _ in $(seq 300); do
        grep -q "^scepd listening" "$dir/out" 2>/dev/null && return 0
        kill -0 "$NODE_PID" 2>/dev/null || { cat "$dir/log" >&2; return 1; }
        sleep 0.1
    done
    echo "$1 did not start" >&2
    return 1
}

first_start_json() { grep '^{' "$WORK/$1/out" | head -1; }

enroll() { # label pids(comma) url also(comma or "")
    local before after
    before=$(pg_cpu)
    echo "-- $1"
    "$LOAD" "$3" --challenge "$CHALLENGE" -c "$LEVELS" -n "$COUNT" -d "$DURATION" \
        --pid "$2" ${4:+--also "$4"} --label "$1" | tee "$WORK/enroll.log" | grep -v '^RESULT' || true
    after=$(pg_cpu)
    grep '^RESULT' "$WORK/enroll.log" | awk -v pg="$(awk -v a="$after" -v b="$before" 'BEGIN{print a-b}')" \
        -F'\t' 'BEGIN{OFS="\t"} {print $0, pg}' >>"$RESULTS"
}

# Issuances per commit over all levels, from each node's /metrics (a read-only admin token):
# how far group commit amortises the database's commit work.
commit_groups() { # label data_dir store_url nodes
    local env=() token commits=0 issuances=0 n m admin
    [[ -n "$3" ]] && env=(SCEPD_STORE_URL="$3" SCEPD_STORE_PASSWORD="$PG_PASSWORD")
    token=$(env "${env[@]}" "$SCEPD" admin --data-dir "$2" token create --name "bench-$1" \
        --scope read --json | sed 's/.*"token":"\([^"]*\)".*/\1/')
    for n in $(seq 1 "$4"); do
        admin=$(sed -n 's/^scepd admin listening on //p' "$WORK/$1-$n/out")
        m=$(curl -sf -H "Authorization: Bearer $token" "$admin/metrics") || continue
        commits=$((commits + $(echo "$m" | awk '$1=="scepd_store_issuance_commits_total"{print $2}')))
        issuances=$((issuances + $(echo "$m" | awk '$1=="scepd_store_issuances_committed_total"{print $2}')))
    done
    printf '%s\t%s\t%s\n' "$1" "$commits" "$issuances" >>"$WORK/groups.tsv"
}

run_variant() { # label data_dir store_url nodes
    local pids=() addrs=() url json
    start_node "$1-1" "$2" "$3"
    pids+=("$NODE_PID"); addrs+=("$NODE_ADDR")
    json=$(first_start_json "$1-1")
    CHALLENGE=$(echo "$json" | sed 's/.*"challenge":"\([^"]*\)".*/\1/')
    url="http://$NODE_ADDR$(echo "$json" | sed 's/.*"scep_path":"\([^"]*\)".*/\1/')"
    for n in $(seq 2 "$4"); do
        start_node "$1-$n" "$2" "$3"
        pids+=("$NODE_PID"); addrs+=("$NODE_ADDR")
    done
    local also
    also=$(IFS=,; echo "${addrs[*]:1}")
    enroll "$1" "$(IFS=,; echo "${pids[*]}")" "$url" "$also"
    commit_groups "$1" "$2" "$3" "$4"
    for p in "${pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
}

echo "== 1 node, SQLite"
run_variant sqlite-1 "$WORK/sqlite-data" "" 1
echo "== 1 node, PostgreSQL"
createdb one
run_variant pg-1 "$WORK/pg1-data" "postgres://scepd@127.0.0.1:$PG_PORT/one" 1
echo "== 3 nodes, PostgreSQL, one shared data dir"
createdb three
run_variant pg-3 "$WORK/pg3-data" "postgres://scepd@127.0.0.1:$PG_PORT/three" 3

echo
echo "== summary (load after the run: $(cut -d' ' -f1-3 /proc/loadavg))"
# RESULT fields: 2 label, 4 conc, 5 ok, 6 failed, 7 rate, 10 p99, 11 dups, 12 server cpu s,
# 17 idle %, last: PostgreSQL CPU s over all levels of that variant.
awk -F'\t' -v bound="$BOUND" '
    $3 == "enroll" { k = $2 SUBSEP $4; rate[k] = $7; p99[k] = $10; ok[k] = $5; fail[k] = $6;
                     dup[k] = $11; cpu[k] = $12; idle[k] = $17; pg[$2] = $NF; total[$2] += $5;
                     levels[$4] = 1 }
    END {
        printf "\nenrollments/s (verified), bound RSA-2048 = %d/s\n", bound
        printf "| variant | conc | enroll/s | /bound | p99 ms | failed | dup serials | scepd CPU ms/enroll | idle |\n"
        printf "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        nv = split("sqlite-1 pg-1 pg-3", vs, " "); nl = split("1 2 4 8 16 32 64", ls, " ")
        for (v = 1; v <= nv; v++) for (l = 1; l <= nl; l++) { c = ls[l]; k = vs[v] SUBSEP c
            if (!(k in rate)) continue
            printf "| %s | %s | %s | %.2f | %s | %s | %s | %s | %s %% |\n", vs[v], c, rate[k],
                rate[k] / bound, p99[k], fail[k], dup[k],
                (ok[k] > 0 && cpu[k] != "-") ? sprintf("%.2f", 1000 * cpu[k] / ok[k]) : "-", idle[k] }
        printf "\nPostgreSQL CPU per enrollment over all levels: pg-1 %.2f ms, pg-3 %.2f ms\n",
            (total["pg-1"] ? 1000 * pg["pg-1"] / total["pg-1"] : 0),
            (total["pg-3"] ? 1000 * pg["pg-3"] / total["pg-3"] : 0)
        for (l = 1; l <= nl; l++) { c = ls[l]; if (!(c in levels)) continue
            s = rate["sqlite-1" SUBSEP c]; p = rate["pg-1" SUBSEP c]; t = rate["pg-3" SUBSEP c]
            printf "c=%s: PostgreSQL 1 node / SQLite = %.2f; 3 nodes / 1 node (PostgreSQL) = %.2f\n",
                c, (s ? p / s : 0), (p ? t / p : 0) }
    }
' "$RESULTS"
echo
awk -F'\t' '{ printf "%s: %d issuances in %d commits, %.1f per commit\n", $1, $3, $2,
              ($2 ? $3 / $2 : 0) }' "$WORK/groups.tsv"
