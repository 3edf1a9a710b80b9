#!/usr/bin/env bash
# One run on one machine: the physical bound from `openssl speed`, then scepd (RSA-2048 and
# ECDSA P-256 intermediates) and micromdm scepserver (Debian `scep`, RSA-2048 CA) driven by the
# same load tool with same-sized request pools at the same concurrencies; GetCACert/GetCACaps
# req/s with wrk; peak RSS. Prints tables with ratios (see BENCHMARKS.md).
#
#   benches/compare.sh                 # defaults: COUNT=1500 DURATION=8 LEVELS=1,2,8,32
#   COUNT=3000 DURATION=10 benches/compare.sh
#   OPENSSL_ia32cap=:~0x200000 benches/compare.sh   # AVX-512 IFMA masked for OpenSSL and aws-lc
#
# scepd runs three times: RSA-2048 intermediate with the default durability (synchronous=FULL:
# an fsync before any CertRep leaves), the same with synchronous=NORMAL, and an ECDSA P-256
# intermediate (FULL). The per-address PKIOperation rate limit is off for the runs (one
# address sends everything).
#
# Everything runs inside a private network namespace (`unshare -n`, only `lo`, up): micromdm
# scepserver cannot bind loopback only (design.md gotcha 9), and nothing here is reachable from
# outside. Needs root (namespace, apt-get when `scep` or `wrk` are missing). Bounded: each level
# stops at COUNT requests or DURATION seconds; the whole run takes about 3-4 minutes.
set -euo pipefail

COUNT=${COUNT:-1500}
DURATION=${DURATION:-8}
LEVELS=${LEVELS:-1,2,8,32}
GET_SECS=${GET_SECS:-5}
SPEED_SECS=${SPEED_SECS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CPUS=$(nproc)

if [[ "${1:-}" != "--inside" ]]; then
    missing=()
    command -v scepserver >/dev/null || missing+=(scep)
    command -v wrk >/dev/null || missing+=(wrk)
    if ((${#missing[@]})); then
        echo "installing ${missing[*]} from the distribution" >&2
        apt-get install -y "${missing[@]}" >/dev/null
    fi
    echo "building scepd and the load tool (release)..." >&2
    (cd "$ROOT" && cargo build --release --locked --bin scepd --example scep-load 2>&1 | tail -1) >&2
    exec unshare -n "$0" --inside
fi

# ---- inside the namespace ----
ip link set lo up
WORK=$(mktemp -d /tmp/scepd-compare.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
SCEPD="$ROOT/target/release/scepd"
LOAD="$ROOT/target/release/examples/scep-load"
RESULTS="$WORK/results.tsv"
: >"$RESULTS"

wait_port() { # host:port
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listening on $1" >&2
    return 1
}

echo "== machine"
echo "$(lscpu | sed -n 's/^Model name: *//p') | ${CPUS} CPUs | $(free -g | awk '/Mem:/{print $2}') GiB | $(uname -r)"
echo "load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
[[ -n "${OPENSSL_ia32cap:-}" ]] && echo "OPENSSL_ia32cap=$OPENSSL_ia32cap (CPU features masked for OpenSSL and aws-lc)"

echo "== openssl speed (${SPEED_SECS} s per figure; $(openssl version | cut -d' ' -f1-2))"
speed() { # alg multi -> "sign/s" ; uses the machine-readable total line
    local line
    line=$(openssl speed -mr -seconds "$SPEED_SECS" ${2:+-multi "$2"} "$1" 2>/dev/null | grep -E '^\+F[0-9]+:' | tail -1)
    echo "$line" | awk -F: '{print $4}'
}
RSA1=$(speed rsa2048 "")
RSAN=$(speed rsa2048 "$CPUS")
EC1=$(speed ecdsap256 "")
ECN=$(speed ecdsap256 "$CPUS")
# One enrollment = RA decrypt + certificate signature + CertRep signature.
BOUND_RSA=$(awk -v r="$RSAN" 'BEGIN{printf "%.0f", r/3}')
BOUND_P256=$(awk -v r="$RSAN" -v e="$ECN" 'BEGIN{printf "%.0f", 1/(2/r + 1/e)}')
printf "RSA-2048 private ops/s: %.0f on 1 core, %.0f on %s cores\n" "$RSA1" "$RSAN" "$CPUS"
printf "ECDSA P-256 signs/s:    %.0f on 1 core, %.0f on %s cores\n" "$EC1" "$ECN" "$CPUS"
echo "bound (all RSA-2048): $BOUND_RSA enrollments/s; with a P-256 intermediate: $BOUND_P256 enrollments/s"

start_scepd() { # name intermediate_key port synchronous -> sets SCEPD_PID, SCEPD_URL, SCEPD_CHALLENGE
    local dir="$WORK/$1"
    mkdir -p "$dir"
    printf '[pki]\nintermediate_key = "%s"\n[store]\nsynchronous = "%s"\n[limits]\npki_operation_per_minute = 0\n' \
        "$2" "$4" >"$dir/scepd.toml"
    "$SCEPD" serve --json --listen "127.0.0.1:$3" --data-dir "$dir/data" --config "$dir/scepd.toml" \
        >"$dir/out" 2>"$dir/log" &
    SCEPD_PID=$!
    PIDS+=("$SCEPD_PID")
    wait_port "127.0.0.1:$3"
    local json
    json=$(grep '^{' "$dir/out" | head -1)
    SCEPD_CHALLENGE=$(echo "$json" | sed 's/.*"challenge":"\([^"]*\)".*/\1/')
    SCEPD_URL="http://127.0.0.1:$3$(echo "$json" | sed 's/.*"scep_path":"\([^"]*\)".*/\1/')"
}

enroll() { # label url challenge pid
    echo "-- $1: enrollments (pool of $COUNT distinct PKCSReqs per level, ≤ ${DURATION} s each)"
    "$LOAD" "$2" --challenge "$3" -c "$LEVELS" -n "$COUNT" -d "$DURATION" --pid "$4" --label "$1" \
        | tee -a "$WORK/enroll.log" | grep -v '^RESULT' || true
    grep '^RESULT' "$WORK/enroll.log" >>"$RESULTS" || true
    : >"$WORK/enroll.log"
}

gets() { # label url pid
    for op in GetCACert GetCACaps; do
        local rps
        rps=$(wrk -t"$CPUS" -c32 -d"${GET_SECS}s" "$2?operation=$op" | awk '/Requests\/sec/{print $2}')
        printf "RESULT\t%s\t%s\t32\t-\t-\t%s\t-\t-\t-\t-\t-\t%s\t-\t-\n" "$1" "$op" "$rps" \
            "$(awk '/VmHWM/{printf "%.1f", $2/1024}' "/proc/$3/status")" >>"$RESULTS"
        echo "-- $1: $op with wrk (32 connections, ${GET_SECS} s): $rps req/s"
    done
}

echo "== scepd, RSA-2048 root/intermediate/RA"
start_scepd rsa rsa-2048 18080 full
enroll scepd-rsa "$SCEPD_URL" "$SCEPD_CHALLENGE" "$SCEPD_PID"
gets scepd "$SCEPD_URL" "$SCEPD_PID"
kill "$SCEPD_PID"

echo "== scepd, RSA-2048 root/intermediate/RA, synchronous=normal"
start_scepd rsa-normal rsa-2048 18083 normal
enroll scepd-rsa-normal "$SCEPD_URL" "$SCEPD_CHALLENGE" "$SCEPD_PID"
kill "$SCEPD_PID"

echo "== scepd, ECDSA P-256 intermediate (RSA-2048 RA)"
start_scepd p256 ecdsa-p256 18082 full
enroll scepd-p256 "$SCEPD_URL" "$SCEPD_CHALLENGE" "$SCEPD_PID"
kill "$SCEPD_PID"

echo "== micromdm scepserver $(scepserver -version 2>&1 | head -1), RSA-2048 CA (also the RA)"
(cd "$WORK" && scepserver ca -init -keySize 2048 -depot "$WORK/depot" >/dev/null 2>&1)
scepserver -depot "$WORK/depot" -port 18081 -challenge compare-secret >"$WORK/micromdm.log" 2>&1 &
MM_PID=$!
PIDS+=("$MM_PID")
wait_port 127.0.0.1:18081
enroll micromdm http://127.0.0.1:18081/scep compare-secret "$MM_PID"
gets micromdm http://127.0.0.1:18081/scep "$MM_PID"
kill "$MM_PID"

echo
echo "== summary (load after the run: $(cut -d' ' -f1-3 /proc/loadavg))"
awk -F'\t' -v brsa="$BOUND_RSA" -v bp="$BOUND_P256" '
    $3 == "enroll" { rate[$2, $4] = $7; p99[$2, $4] = $10; ok[$2, $4] = $5; fail[$2, $4] = $6;
                     dup[$2, $4] = $11; cpu[$2, $4] = $12; rss[$2, $4] = $13; idle[$2, $4] = $17;
                     levels[$4] = 1 }
    $3 ~ /^GetCA/  { get[$2, $3] = $7; grss[$2, $3] = $13 }
    END {
        printf "\nenrollments/s (verified), bound RSA-2048 = %d/s, bound P-256 intermediate = %d/s\n", brsa, bp
        printf "| conc | scepd RSA | /bound | p99 ms | RSA, sync=normal | /bound | scepd P-256 int. | /bound | p99 ms | micromdm | ok %% | dup serials | p99 ms | scepd/micromdm |\n"
        printf "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        n = split("1 2 8 32 4 16 64", order, " ")
        for (i = 1; i <= n; i++) { c = order[i]; if (!(c in levels)) continue
            r = rate["scepd-rsa", c]; p = rate["scepd-p256", c]; m = rate["micromdm", c]
            rn = rate["scepd-rsa-normal", c]
            tot = ok["micromdm", c] + fail["micromdm", c]
            printf "| %s | %s | %.2f | %s | %s | %.2f | %s | %.2f | %s | %s | %.0f %% | %s | %s | %.1f× |\n", c,
                r, r / brsa, p99["scepd-rsa", c], rn, rn / brsa, p, p / bp, p99["scepd-p256", c],
                m, (tot ? 100 * ok["micromdm", c] / tot : 0), dup["micromdm", c], p99["micromdm", c],
                (m > 0 ? r / m : 0) }
        # On a shared host the rate moves with the neighbours; CPU per enrollment and the idle
        # share say whether a difference is the server or the machine.
        printf "\nserver CPU per verified enrollment (ms) and idle share of the machine\n"
        printf "| conc | scepd RSA | idle | RSA, sync=normal | idle | scepd P-256 int. | idle | micromdm | idle |\n"
        printf "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for (i = 1; i <= n; i++) { c = order[i]; if (!(c in levels)) continue
            printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", c,
                per("scepd-rsa", c), pct("scepd-rsa", c), per("scepd-rsa-normal", c),
                pct("scepd-rsa-normal", c), per("scepd-p256", c), pct("scepd-p256", c),
                per("micromdm", c), pct("micromdm", c) }
        printf "\nscepd failures at any level: RSA %d, RSA normal %d, P-256 %d; duplicate serials: RSA %d, RSA normal %d, P-256 %d\n",
            sumf("scepd-rsa"), sumf("scepd-rsa-normal"), sumf("scepd-p256"),
            sumd("scepd-rsa"), sumd("scepd-rsa-normal"), sumd("scepd-p256")
        printf "\nGET operations (wrk, 32 connections)\n| operation | scepd req/s | micromdm req/s | scepd/micromdm |\n|---|---:|---:|---:|\n"
        for (o = 1; o <= 2; o++) { op = o == 1 ? "GetCACert" : "GetCACaps"
            printf "| %s | %s | %s | %.2f× |\n", op, get["scepd", op], get["micromdm", op],
                (get["micromdm", op] > 0 ? get["scepd", op] / get["micromdm", op] : 0) }
        printf "\npeak RSS during the concurrency-32 level: scepd RSA %s MiB, scepd P-256 %s MiB, micromdm %s MiB\n",
            rss["scepd-rsa", 32], rss["scepd-p256", 32], rss["micromdm", 32]
        printf "peak RSS from the start of the concurrency-32 level through the GET runs: scepd %s MiB, micromdm %s MiB\n",
            grss["scepd", "GetCACaps"], grss["micromdm", "GetCACaps"]
    }
    function pct(l, c) { return ((l, c) in idle && idle[l, c] != "-") ? idle[l, c] " %" : "-" }
    function per(l, c) { return (ok[l, c] > 0 && cpu[l, c] != "-") ? sprintf("%.2f", 1000 * cpu[l, c] / ok[l, c]) : "-" }
    function sumf(l,   c, s) { for (c in levels) s += fail[l, c]; return s + 0 }
    function sumd(l,   c, s) { for (c in levels) s += dup[l, c]; return s + 0 }
' "$RESULTS"
