# bench/run --citus: the same server on a Citus cluster against the same machine's single
# Postgres. Sourced by bench/run after its builds and helpers; not run on its own.
#
#   1. onboarding: ONBOARD tenants one after another through POST /api/tenant/create,
#      on the single Postgres and on the cluster (median / p95), and where Citus put them;
#   2. read: GET /api/users over 100 tenants x 20 users, wrk rounds alternating the
#      cluster and the single Postgres (same build, same settings, both servers up);
#   3. scale: tenants created on the cluster by 4 clients up to BENCH_TENANTS_SCALE
#      (default 10000), sized down to what fits in BENCH_CITUS_BUDGET_S seconds of
#      creation (default 1200) at the rate measured on the first batch, then rounds over
#      all of them alternating with rounds over the first 100, and the spread per worker.
#
# The cluster: the coordinator in CITUS_DATABASE_URL (its workers from pg_dist_node). The
# bench makes a database of its own on every node (the citus extension, the workers
# registered as in the given database) and drops it at the end.

[[ -n ${CITUS_DATABASE_URL:-} ]] || { echo "bench/run --citus: CITUS_DATABASE_URL is not set (the coordinator, e.g. postgres://postgres@127.0.0.1:9700/mtpaas)" >&2; exit 2; }
CITUS_BUDGET_S=${BENCH_CITUS_BUDGET_S:-1200}
[[ $SMOKE == 1 ]] && CITUS_BUDGET_S=${BENCH_CITUS_BUDGET_S:-120}
CDB=mtpaas_bench_citus
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
DB_CPG=mtpaas_bench_citus_pg
CT_PORT=38083
cpsql() { timeout 600 psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# ---------------------------------------------------------------- the cluster's database
log "Citus: the cluster at $CITUS_DATABASE_URL"
CSRC="$CITUS_DATABASE_URL"
CH=$(cpsql -d "$CSRC" -At -c "SELECT host(inet_server_addr())")
CP=$(cpsql -d "$CSRC" -At -c "SELECT inet_server_port()")
CU=$(cpsql -d "$CSRC" -At -c "SELECT current_user")
CVER=$(cpsql -d "$CSRC" -At -c "SELECT citus_version()" | cut -d' ' -f1-2)
mapfile -t CWORKERS < <(cpsql -d "$CSRC" -At -F: -c "SELECT nodename, nodeport FROM pg_dist_node WHERE groupid <> 0 AND noderole = 'primary' AND isactive ORDER BY nodeid")
(( ${#CWORKERS[@]} >= 2 )) || { echo "bench --citus: the cluster has ${#CWORKERS[@]} active worker(s), 2 needed" >&2; exit 1; }
say "  coordinator $CH:$CP, workers ${CWORKERS[*]} ($CVER)"
node_psql() { # HOST:PORT DB ARGS...
  local hp=$1 db=$2; shift 2
  cpsql -h "${hp%:*}" -p "${hp##*:}" -U "$CU" -d "$db" "$@"
}
drop_cluster_db() {
  local n
  for n in "$CH:$CP" "${CWORKERS[@]}"; do
    # A worker's maintenance daemon can hold a connection that FORCE ends, failing the
    # statement once.
    for _ in 1 2 3; do node_psql "$n" postgres -c "DROP DATABASE IF EXISTS $CDB WITH (FORCE)" 2>/dev/null && break; sleep 0.5; done
  done
}
drop_cluster_db
for n in "$CH:$CP" "${CWORKERS[@]}"; do
  node_psql "$n" postgres -c "CREATE DATABASE $CDB"
  node_psql "$n" "$CDB" -c "CREATE EXTENSION citus"
done
node_psql "$CH:$CP" "$CDB" -At -c "SELECT citus_set_coordinator_host('$CH', $CP)" >/dev/null
for w in "${CWORKERS[@]}"; do node_psql "$CH:$CP" "$CDB" -At -c "SELECT citus_add_node('${w%:*}', ${w##*:})" >/dev/null; done
# The servers stopped first (cleanup, which reads the exit status from $?), then the
# database dropped on every node; errexit off in here, or a failed run's status would
# end the trap before it stopped anything.
trap 'rc=$?; set +e; (exit $rc); cleanup; drop_cluster_db >/dev/null 2>&1; exit $rc' EXIT
# Both servers without TLS, as in the single-node bench.
CURL="postgres://$CU@$CH:$CP/$CDB$DBOPT"
CPSQL="postgres://$CU@$CH:$CP/$CDB?sslmode=disable"
fresh_db "$DB_CPG"
PURL="$PG/$DB_CPG$DBOPT"
PPSQL="postgres://postgres@127.0.0.1:5432/$DB_CPG"

spread() { # LIKE: "host:port=count ..." for the tenant schemas matching LIKE
  cpsql -d "$CPSQL" -At -c "
SELECT string_agg(node || '=' || n, ' ' ORDER BY node) FROM (
  SELECT node, count(*) AS n FROM (
    SELECT DISTINCT ON (s.schemaid) nd.nodename || ':' || nd.nodeport AS node
      FROM pg_dist_schema s
      JOIN pg_dist_partition p ON p.colocationid = s.colocationid
      JOIN pg_dist_shard sh ON sh.logicalrelid = p.logicalrelid
      JOIN pg_dist_placement pl ON pl.shardid = sh.shardid
      JOIN pg_dist_node nd ON nd.groupid = pl.groupid
     WHERE s.schemaid::regnamespace::text LIKE '$1') x GROUP BY node) y"
}
on_coordinator() { # the tenant schemas not distributed (must be none)
  cpsql -d "$CPSQL" -At -c "SELECT count(*) FROM hltutor.tenants t WHERE NOT EXISTS (SELECT 1 FROM pg_dist_schema s WHERE s.schemaid = to_regnamespace(t.tenant_id))"
}

log "starting mtpaas on the single Postgres (:$MT_PORT) and on the cluster (:$CT_PORT), same build and settings"
start_mtpaas mtpaas-pg "$MT_PORT" "$PURL"; PG_PID=$SPID
start_mtpaas mtpaas-citus "$CT_PORT" "$CURL"; CT_PID=$SPID
MP=http://127.0.0.1:$MT_PORT
MC=http://127.0.0.1:$CT_PORT

# ---------------------------------------------------------------- 1. onboarding
log "onboarding: $ONBOARD tenants one after another through POST /api/tenant/create, single Postgres then the cluster"
OBP=$(timeout 900 "$TOOL" onboard "$MP" "$API_KEY" t 1 "$ONBOARD" 1 1000 | grep '^KV')
OBC=$(timeout 1800 "$TOOL" onboard "$MC" "$API_KEY" t 1 "$ONBOARD" 1 1000 | grep '^KV')
OBP_MED=$(calc "$(kv "$OBP" median_ms)"); OBP_P95=$(calc "$(kv "$OBP" p95_ms)")
OBC_MED=$(calc "$(kv "$OBC" median_ms)"); OBC_P95=$(calc "$(kv "$OBC" p95_ms)")
OBC_S=$(calc "$(kv "$OBC" total_s)" 1)
say "  single Postgres: median $OBP_MED ms, p95 $OBP_P95 ms; cluster: median $OBC_MED ms, p95 $OBC_P95 ms ($ONBOARD in $OBC_S s)"
SPREAD200=$(spread 't%')
say "  the $ONBOARD new tenants over the workers: $SPREAD200"
LOCAL=$(on_coordinator)
[[ $LOCAL == 0 ]] || { echo "$LOCAL tenant schemas not distributed" >&2; exit 1; }
row "Onboarding median (ms)" "$OBC_MED" "$OBP_MED" "$(calc "$OBC_MED/$OBP_MED")"
row "Onboarding p95 (ms)" "$OBC_P95" "$OBP_P95" "$(calc "$OBC_P95/$OBP_P95")"
row "Spread of the first $ONBOARD new tenants (tenants per worker)" "$SPREAD200" "" ""

# ---------------------------------------------------------------- 2. read
log "tenants: 20 users each, on both"
t0=$(now); fill_users "$PPSQL"; t1=$(now); fill_users "$CPSQL"; t2=$(now)
FILL_C_PER=$(calc "($t2-$t1)/$ONBOARD*1000" 1)
say "  filled: single Postgres $(calc "$t1-$t0" 1) s, cluster $(calc "$t2-$t1" 1) s ($FILL_C_PER ms per tenant)"
n=$(cpsql -d "$CPSQL" -At -c 'SELECT count(*) FROM t00001.user_mst')
[[ $n == 20 ]] || { echo "t00001 holds $n users on the cluster, not 20" >&2; exit 1; }

log "read: $READ_TENANTS tenants x 20 users, wrk ${WRK_ARGS[*]} -d${DURATION}s, $ROUNDS rounds alternating the cluster and the single Postgres after ${WARMUP} s of warm-up each"
TP100=$WORK/tokens-pg-100.txt; TC100=$WORK/tokens-citus-100.txt
tokens "$PPSQL" "$TP100" "$READ_TENANTS" >/dev/null
tokens "$CPSQL" "$TC100" "$READ_TENANTS" >/dev/null
warm_wrk citus-100 "$MC" "$BENCH/wrk/tenants.lua" "$TC100" 2
warm_wrk pg-100 "$MP" "$BENCH/wrk/tenants.lua" "$TP100" 2
rounds citus-100 "$MC" "$BENCH/wrk/tenants.lua" "$TC100" pg-100 "$MP" "$BENCH/wrk/tenants.lua" "$TP100"
C_RPS=$A_RPS; C_P50=$A_P50; C_P99=$A_P99
P_RPS=$B_RPS; P_P50=$B_P50; P_P99=$B_P99
say "  cluster / single Postgres: throughput $(calc "$C_RPS/$P_RPS" 3)x, p99 $(calc "$C_P99/$P_P99" 3)x"
row "Read, 100 tenants: throughput (req/s)" "$(calc "$C_RPS" 0)" "$(calc "$P_RPS" 0)" "$(calc "$C_RPS/$P_RPS" 3)"
row "Read, 100 tenants: p50 (ms)" "$C_P50" "$P_P50" "$(calc "$C_P50/$P_P50" 3)"
row "Read, 100 tenants: p99 (ms)" "$C_P99" "$P_P99" "$(calc "$C_P99/$P_P99" 3)"
stop "$PG_PID"

# ---------------------------------------------------------------- 3. scale
# Sizing: a first batch of 200 with 4 clients gives the rate; the rest of the count is
# cut to what fits in the budget (creation and the users added to each).
BATCH=200
(( SCALE - ONBOARD > BATCH )) || BATCH=$(( SCALE - ONBOARD ))
log "scale: a first batch of $BATCH tenants on the cluster (4 concurrent clients) to size the run"
SB=$(timeout 1800 "$TOOL" onboard "$MC" "$API_KEY" t $(( ONBOARD + 1 )) "$BATCH" 4 1000 | grep '^KV')
SB_RATE=$(kv "$SB" per_s); SB_S=$(kv "$SB" total_s)
PER_MS=$(calc "1000/$SB_RATE + $FILL_C_PER" 1)
LEFT=$(( SCALE - ONBOARD - BATCH ))
FIT=$(awk -v b="$CITUS_BUDGET_S" -v used="$SB_S" -v per="$PER_MS" 'BEGIN { n = int((b - used) * 1000 / per / 100) * 100; print (n < 0) ? 0 : n }')
if (( LEFT > FIT )); then
  SCALE_USED=$(( ONBOARD + BATCH + FIT ))
  SIZED="cut from $SCALE to $SCALE_USED: at $(calc "$SB_RATE" 1) tenants/s (4 clients) plus $FILL_C_PER ms per tenant for its users, $SCALE would take about $(calc "($SCALE - $ONBOARD) * $PER_MS / 1000 / 60" 0) min of creation, over the ${CITUS_BUDGET_S} s budget"
  LEFT=$FIT
else
  SCALE_USED=$SCALE
  SIZED="all $SCALE (about $(calc "($SCALE - $ONBOARD) * $PER_MS / 1000 / 60" 0) min of creation at $(calc "$SB_RATE" 1) tenants/s, within the ${CITUS_BUDGET_S} s budget)"
fi
say "  $BATCH tenants in $(calc "$SB_S" 1) s ($(calc "$SB_RATE" 1)/s; median $(calc "$(kv "$SB" median_ms)") ms, p95 $(calc "$(kv "$SB" p95_ms)") ms); scale: $SIZED"
log "scale: $LEFT tenants more on the cluster (4 concurrent clients, in chunks of 500), $SCALE_USED in all"
# In chunks, so that a rate falling as the cluster grows stops the creation at the
# budget instead of overrunning it; SCALE_USED is what was created.
DONE=0; REST_S=0; SC="KV total_s=0 per_s=0 median_ms=0 p95_ms=0"
while (( DONE < LEFT )); do
  n=$(( LEFT - DONE < 500 ? LEFT - DONE : 500 ))
  SC=$(timeout 3600 "$TOOL" onboard "$MC" "$API_KEY" t $(( ONBOARD + BATCH + DONE + 1 )) "$n" 4 1000 | grep '^KV')
  DONE=$(( DONE + n )); REST_S=$(calc "$REST_S + $(kv "$SC" total_s)" 3)
  say "    $(( ONBOARD + BATCH + DONE )) tenants; this chunk: $(calc "$(kv "$SC" per_s)" 1)/s, median $(calc "$(kv "$SC" median_ms)") ms, p95 $(calc "$(kv "$SC" p95_ms)") ms"
  over=$(awk -v b="$CITUS_BUDGET_S" -v t="$(calc "$SB_S + $REST_S" 3)" -v d="$(( ONBOARD + BATCH + DONE ))" -v f="$FILL_C_PER" 'BEGIN { print (t + d * f / 1000 >= b) ? 1 : 0 }')
  if (( over && DONE < LEFT )); then
    SIZED="$SIZED; stopped at $(( ONBOARD + BATCH + DONE )) when the creation reached the budget"
    break
  fi
done
SCALE_USED=$(( ONBOARD + BATCH + DONE ))
SC_S=$(calc "$SB_S + $REST_S" 1)
SC_PER=$(calc "$SC_S * 1000 / ($SCALE_USED - $ONBOARD)" 1)
say "  $(( SCALE_USED - ONBOARD )) tenants in $SC_S s ($SC_PER ms per tenant with 4 clients; the last chunk: median $(calc "$(kv "$SC" median_ms)") ms, p95 $(calc "$(kv "$SC" p95_ms)") ms)"
t0=$(now); fill_users "$CPSQL"; t1=$(now)
say "  19 users more in each: $(calc "$t1-$t0" 1) s"
SPREADALL=$(spread 't%')
say "  the $SCALE_USED tenants over the workers: $SPREADALL"
LOCAL=$(on_coordinator)
[[ $LOCAL == 0 ]] || { echo "$LOCAL tenant schemas not distributed" >&2; exit 1; }
TCALL=$WORK/tokens-citus-all.txt
NT=$(tokens "$CPSQL" "$TCALL")
[[ $NT == "$SCALE_USED" ]] || { echo "$NT tenants, expected $SCALE_USED" >&2; exit 1; }
warm_wrk "citus-$SCALE_USED" "$MC" "$BENCH/wrk/tenants.lua" "$TCALL" 2
rounds "citus-$SCALE_USED" "$MC" "$BENCH/wrk/tenants.lua" "$TCALL" citus-100-again "$MC" "$BENCH/wrk/tenants.lua" "$TC100"
S_RPS=$A_RPS; S_P50=$A_P50; S_P99=$A_P99
C2_RPS=$B_RPS; C2_P99=$B_P99
say "  $SCALE_USED tenants / 100 tenants, alternating rounds on the cluster: throughput $(calc "$S_RPS/$C2_RPS" 3)x, p99 $(calc "$S_P99/$C2_P99" 3)x"
row "Tenants in the scale run (of $SCALE asked)" "$SCALE_USED" "" ""
row "Creating tenants on the cluster, 4 clients (ms per tenant, whole scale run)" "$SC_PER" "" ""
row "Read, $SCALE_USED tenants vs 100 in alternating rounds, cluster (req/s)" "$(calc "$S_RPS" 0)" "$(calc "$C2_RPS" 0) (first 100 tenants)" "$(calc "$S_RPS/$C2_RPS" 3)"
row "Read, $SCALE_USED tenants vs 100 in alternating rounds, cluster: p99 (ms)" "$S_P99" "$C2_P99 (first 100 tenants)" "$(calc "$S_P99/$C2_P99" 3)"
row "Read, $SCALE_USED tenants on the cluster vs 100 on the single Postgres (req/s)" "$(calc "$S_RPS" 0)" "$(calc "$P_RPS" 0)" "$(calc "$S_RPS/$P_RPS" 3)"
row "Spread of the $SCALE_USED tenants (tenants per worker)" "$SPREADALL" "" ""
stop "$CT_PID"

# ---------------------------------------------------------------- report
log "figures (cluster vs single Postgres)"
printf '%-72s %-34s %-28s %s\n' "figure" "cluster" "single Postgres" "ratio"
for r in "${ROWS[@]}"; do IFS='|' read -r a b c d <<<"$r"; printf '%-72s %-34s %-28s %s\n' "$a" "$b" "$c" "$d"; done
say "  note: $(nproc) CPU cores here, shared by the cluster's three Postgres servers, the single Postgres, mtpaas and wrk"

if [[ $WRITE == 1 ]]; then
  log "writing the Citus section of BENCHMARKS.md"
  GEN=$WORK/generated-citus.md
  {
    echo "<!-- bench-citus:begin -->"
    echo "<!-- Written by bench/run --citus; edit outside the markers. -->"
    echo "## On a Citus cluster"
    echo
    echo "Last run: $(date -u '+%Y-%m-%d %H:%M UTC'), commit \`$(git -C "$ROOT" rev-parse --short HEAD)\`$([[ $SMOKE == 1 ]] && echo ' (smoke mode: short runs, small counts)'). $CVER on $(cpsql -d "$CSRC" -At -c 'select version()' | cut -d' ' -f1-2): a coordinator and ${#CWORKERS[@]} workers (\`scripts/citus-cluster\`: schema-based sharding, \`wal_level=logical\`, \`citus.node_connection_timeout=3000\`), all on this machine."
    echo
    echo "Load average (1, 5, 15 min) at the start of the run: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on this machine shares the cores too)."
    echo
    echo "**All of it runs on the same $(nproc) CPU cores**: the cluster's three Postgres servers, the single Postgres it is compared with, mtpaas and wrk. A read on the cluster costs two Postgres hops (coordinator, then the worker holding the tenant) on those same cores, so these figures show what the extra hop costs here, not what a cluster of separate machines gives."
    echo
    echo "### Method"
    echo
    echo "- The same mtpaas release build and settings as above (\`DB_MAX_CONNECTIONS=20\`, \`sslmode=disable\`), one server on the cluster's coordinator and one on the single Postgres (127.0.0.1:5432), each with a fresh database of its own (on the cluster: a database made on every node with the citus extension and the workers registered, dropped afterwards)."
    echo "- Onboarding: $ONBOARD tenants one after another through \`POST /api/tenant/create\` on each (\`benchtool onboard\`, one client). Spread: the node of each tenant schema from the catalogs (\`pg_dist_schema\` → placements → \`pg_dist_node\`)."
    echo "- Read: \`GET /api/users\` over the first $READ_TENANTS tenants x 20 users, \`wrk ${WRK_ARGS[*]} -d${DURATION}s\`, $ROUNDS rounds alternating the cluster and the single Postgres after a ${WARMUP} s warm-up of each; medians of the rounds. Ratios: cluster / single Postgres."
    echo "- Scale: tenants created on the cluster by 4 clients, up to BENCH_TENANTS_SCALE=$SCALE, sized to a creation budget of ${CITUS_BUDGET_S} s at the rate of a first batch of $BATCH: $SIZED. 19 users added to each by SQL, then rounds over all $SCALE_USED alternating with rounds over the first $READ_TENANTS on the same server."
    echo
    echo "Run it: \`CITUS_DATABASE_URL=postgres://postgres@127.0.0.1:9700/mtpaas bench/run --citus\` (writes this section only; \`--smoke\` for a short run). Knobs as above, and \`BENCH_CITUS_BUDGET_S\`."
    echo
    echo "### Figures"
    echo
    echo "| Figure | Citus cluster | Single Postgres | Ratio |"
    echo "|---|---|---|---|"
    for r in "${ROWS[@]}"; do IFS='|' read -r a b c d <<<"$r"; echo "| $a | $b | ${c:--} | ${d:--} |"; done
    echo
    echo "### Raw"
    echo
    echo '```'
    for r in $(seq "$ROUNDS"); do
      for f in "citus-100-r$r" "pg-100-r$r" "citus-$SCALE_USED-r$r" "citus-100-again-r$r"; do
        echo "wrk $f:"; grep -v '^BENCH' "$WORK/wrk-$f.txt"; grep '^BENCH' "$WORK/wrk-$f.txt"; echo
      done
    done
    echo "onboarding (single Postgres): $OBP"
    echo "onboarding (cluster):         $OBC"
    echo "scale, first batch:           $SB"
    echo "scale, the last chunk:        $SC"
    echo "spread, first $ONBOARD:           $SPREAD200"
    echo "spread, all $SCALE_USED:           $SPREADALL"
    echo '```'
    echo "<!-- bench-citus:end -->"
  } >"$GEN"
  OUT=$ROOT/BENCHMARKS.md
  if grep -q '^<!-- bench-citus:begin -->' "$OUT" && grep -q '^<!-- bench-citus:end -->' "$OUT"; then
    awk -v gen="$GEN" '
      /^<!-- bench-citus:begin -->/ { while ((getline l < gen) > 0) print l; skip = 1; next }
      /^<!-- bench-citus:end -->/ { skip = 0; next }
      !skip { print }' "$OUT" >"$WORK/BENCHMARKS.md"
  else
    # Right after the single-node figures.
    awk -v gen="$GEN" '
      { print }
      /^<!-- bench:end -->/ { print ""; while ((getline l < gen) > 0) print l }' "$OUT" >"$WORK/BENCHMARKS.md"
  fi
  cp "$WORK/BENCHMARKS.md" "$OUT"
  say "wrote $OUT"
fi
exit 0
