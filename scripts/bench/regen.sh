#!/usr/bin/env bash
# Regenerates BENCHMARKS.md (`make bench`): runs each benchmark, turns its
# output into a Markdown fragment in .bench/fragments/NAME.md (with when,
# where and by which command it was measured), draws the plots into
# docs/bench/, and splices the fragments into the document between its
# <!-- bench:NAME --> markers. Prose outside the markers is never touched;
# a step that fails or is not selected leaves its region as it was.
#
#   make bench                                # everything: well over an hour
#   BENCH_ONLY=corpus,ruptures make bench     # just these steps
#   BENCH_SKIP=es5m,big make bench            # all but the heavy-setup steps
#
# Steps, in order:
#   micro       Go micro-benchmarks, GOMAXPROCS=1, -count $BENCH_COUNT (3)   ~2 min
#   big         1 GB log file within 200 MB RSS (writes ~1 GB to $TMPDIR)    ~1 min
#   scale       one evaluation of 10,000 series at 6 h, 12 h and 7 days, and the week through the cache ~15 min
#   seasonal    false findings per week with and without seasonality        ~30 s
#   tcpd        MeanShift on TCPD (needs ../shared/bench/tcpd)               seconds
#   loghub      signatures on loghub-2k (needs ../shared/bench/loghub, python3) seconds
#   bursty      false alarms on bursty baselines                             seconds
#   es5m        5.2M documents in its own Elasticsearch on port 9201          ~20 min
#   incremental incremental vs from-scratch evaluations on $BENCH_INCR_ES_URL ~9 min
#   intake      intake under load, 60 s                                     ~1 min
#   slowload    1,000 slow clients against the daemon, 30 s                 ~2 min
#   retention   store size over 90 simulated days, pruned and not          ~3 min
#   e2e         detection delay of the end-to-end run, seeds $E2E_SEEDS      ~2 min
#   ruptures    scripts/bench/run-ruptures.sh (SHAPES, SEEDS, ... pass through) ~2 min
#   elastalert  scripts/bench/run-elastalert.sh (ES, RUNS, ... pass through)  ~6 min
#   tickets     related-ticket precision and recall per shape (TICKETS_SEEDS) ~3 min
#   corpus      TestCorpus (CULPRIT_CORPUS_* pass through), 28 quiet days  ~1 h
#
# Environment:
#   BENCH_ONLY, BENCH_SKIP  comma-separated step names
#   BENCH_DOC               the document to splice into (default BENCHMARKS.md)
#   BENCH_PLOTS             directory for the PNG plots (default docs/bench)
#   BENCH_COUNT             -count of the micro-benchmarks (default 3)
#   E2E_SEEDS               seeds of the e2e step (default "1 2 3 4")
#   TICKETS_SEEDS           seeds of the tickets step (default "1,2,3")
#   BENCH_ES5M_PORT         port of the es5m cluster (default 9201)
#   BENCH_ES5M_URL          use this cluster instead of starting one (its
#                           bench5m-* indices are replaced, then deleted)
#   BENCH_ES5M_PEAK         --peak-per-min of the es5m data (default 15000:
#                           5.2M documents; lower only to try the step out)
#   BENCH_ES5M_KEEP=1       leave the es5m cluster (or index) as it is; the
#                           next run reuses the index instead of reloading it
#   BENCH_INCR_ES_URL       cluster of the incremental step (default
#                           $CULPRIT_TEST_ES_URL, else http://127.0.0.1:9200);
#                           it indexes about 0.4 M documents and deletes them
# shellcheck disable=SC2317 # the steps are called indirectly, as step_$name
set -euo pipefail

cd "$(dirname "$0")/../.."
root=$PWD
bench=$root/.bench
frag=$bench/fragments
raw=$bench/raw
doc=${BENCH_DOC:-BENCHMARKS.md}
plots=${BENCH_PLOTS:-docs/bench}
bd=$bench/benchdoc

all_steps=(micro big scale seasonal tcpd loghub bursty es5m incremental intake retention slowload e2e ruptures elastalert tickets corpus)

die() { echo "regen: $*" >&2; exit 2; }

# check_step NAME VAR: die unless NAME (from the variable VAR) is a step.
check_step() {
	[[ " ${all_steps[*]} " == *" $1 "* ]] || die "unknown step '$1' in $2 (steps: ${all_steps[*]})"
}

# with_env VAR...: "VAR=value " for each VAR that is set, shell-quoted, to
# show a script's command with the settings it really ran with.
with_env() {
	local v out=""
	for v in "$@"; do
		if [[ -n ${!v:-} ]]; then out+="$v=$(printf '%q' "${!v}") "; fi
	done
	printf '%s' "$out"
}

# emit NAME COMMAND BODY: the fragment for region NAME, from BODY (a file),
# stamped with the machine, the step's time so far and the command.
emit() {
	"$bd" wrap -step "$1" -seconds $((SECONDS - step_start)) -command "$2" <"$3" >"$frag/$1.md.part"
	mv "$frag/$1.md.part" "$frag/$1.md"
}

# run CMD LOG: run a command line (eval, so VAR=value prefixes work), its
# output shown and kept in LOG.
run() {
	echo "+ $1" >&2
	eval "$1" 2>&1 | tee "$2" >&2
}

step_micro() {
	local cmd="GOMAXPROCS=1 go test -run '^\$' -bench 'Ingest|Correlate10k|MeanShift100k|PELTPoisson360|ChangepointsCLI100k|Mask\$|Group|WriteFiles' -benchmem -count ${BENCH_COUNT:-3} ./sources/file/ ./correlate/... ./cmd/culprit/ ./sources/simulate/"
	run "$cmd" "$raw/micro.txt"
	"$bd" micro <"$raw/micro.txt" >"$raw/micro.md"
	emit micro "$cmd" "$raw/micro.md"
}

step_big() {
	local cmd1="CULPRIT_BIG=1 go test -count=1 -run TestBigFileRSS -v ./sources/file/"
	local cmd2="CULPRIT_BIG=1 CULPRIT_BIG_UNIQUE=1 go test -count=1 -run TestBigFileRSS -v ./sources/file/"
	run "$cmd1" "$raw/big-1.txt"
	run "$cmd2" "$raw/big-2.txt"
	{
		echo "== realistic messages"
		cat "$raw/big-1.txt"
		echo "== every error message unique (ids everywhere)"
		cat "$raw/big-2.txt"
	} | "$bd" big >"$raw/big.md"
	emit big "$cmd1; $cmd2" "$raw/big.md"
}

# Issue 17's "memory and CPU at the daemon's largest setting": each
# lookback in its own process, so each peak RSS is its own.
step_scale() {
	local b cmds=()
	for b in 6h 12h 7d 7dQuiet; do
		cmds+=("GOMAXPROCS=1 go test -run '^\$' -bench '^BenchmarkLargestSetting$b\$' -benchtime 3x -count 3 ./correlate/")
	done
	# The week as the daemon runs it, through the incremental cache: one
	# process, since filling the cache a bucket at a time takes minutes;
	# with the soft memory limit README's deployment section gives for
	# this setting (without it the heap grows to twice what is live before
	# a collection: 580 MB peak for 185 MB live).
	cmds+=("GOMEMLIMIT=400MiB GOMAXPROCS=1 go test -run '^\$' -bench '^BenchmarkLargestSetting7dIncremental\$' -benchtime 3x -count 3 ./correlate/")
	: >"$raw/scale.txt"
	for b in "${cmds[@]}"; do
		run "$b" "$raw/scale.part"
		cat "$raw/scale.part" >>"$raw/scale.txt"
	done
	"$bd" scale <"$raw/scale.txt" >"$raw/scale.md"
	emit scale "for b in 6h 12h 7d 7dQuiet; do GOMAXPROCS=1 go test -run '^\$' -bench \"^BenchmarkLargestSetting\$b\\\$\" -benchtime 3x -count 3 ./correlate/; done; GOMEMLIMIT=400MiB GOMAXPROCS=1 go test -run '^\$' -bench '^BenchmarkLargestSetting7dIncremental\$' -benchtime 3x -count 3 ./correlate/" "$raw/scale.md"
}

step_seasonal() {
	local cmd="go test -count=1 -run TestSeasonalBaselines -v ./correlate/"
	run "$cmd" "$raw/seasonal.txt"
	"$bd" seasonal <"$raw/seasonal.txt" >"$raw/seasonal.md"
	emit seasonal "$cmd" "$raw/seasonal.md"
}

step_tcpd() {
	local cmd="go test -count=1 -run TestTCPDDefaults -v ./correlate/changepoint/"
	run "$cmd" "$raw/tcpd.txt"
	"$bd" tcpd <"$raw/tcpd.txt" >"$raw/tcpd.md"
	emit tcpd "$cmd" "$raw/tcpd.md"
}

# The benchmark's own runner builds its harness against this checkout and
# scores with its Python scorer, the figures issue 15's acceptance names;
# TestLoghubGroupingAccuracy holds the same bar in CI.
step_loghub() {
	local cmd="bash ../shared/bench/loghub/run.sh ."
	[[ -f ../shared/bench/loghub/run.sh ]] || die "loghub: no ../shared/bench/loghub/run.sh beside the clone"
	run "LH_OUT=$bench/loghub $cmd" "$raw/loghub.txt"
	"$bd" loghub <"$raw/loghub.txt" >"$raw/loghub.md"
	emit loghub "$cmd" "$raw/loghub.md"
}

step_bursty() {
	local cmd="go test -count=1 -run 'TestDetectBurstyBaselineRarelyFires|TestDetectStationaryNeverFires' -v ./correlate/"
	run "$cmd" "$raw/bursty.txt"
	"$bd" bursty <"$raw/bursty.txt" >"$raw/bursty.md"
	emit bursty "$cmd" "$raw/bursty.md"
}

step_es5m() {
	local state=$root/.es/bench-state dir=$bench/es5m url count peak=${BENCH_ES5M_PEAK:-15000}
	mkdir -p "$dir"
	if [[ -n ${BENCH_ES5M_URL:-} ]]; then
		url=$BENCH_ES5M_URL
		if [[ ${BENCH_ES5M_KEEP:-} != 1 ]]; then
			# shellcheck disable=SC2064 # expand now: the trap runs in this subshell
			trap "curl -fsS -X DELETE '$url/bench5m-*' >/dev/null 2>&1; rm -f '$dir/loaded'" EXIT
		fi
	else
		url=$(CULPRIT_ES_PORT=${BENCH_ES5M_PORT:-9201} CULPRIT_ES_HEAP=1g CULPRIT_ES_STATE=$state bash scripts/es-up.sh | tail -n 1)
		if [[ ${BENCH_ES5M_KEEP:-} != 1 ]]; then
			# shellcheck disable=SC2064
			trap "CULPRIT_ES_STATE='$state' bash scripts/es-down.sh >&2 || true; rm -f '$dir/loaded'" EXIT
		fi
	fi
	count=$(curl -fsS "$url/bench5m-*/_count" 2>/dev/null | sed -n 's/.*"count":\([0-9]*\).*/\1/p' || true)
	if [[ -n $count && $count != 0 && -f $dir/loaded && "$count $peak" == "$(cat "$dir/loaded")" ]]; then
		echo "regen: es5m: reusing bench5m-* ($count documents)" >&2
	else
		curl -fsS -X DELETE "$url/bench5m-*" >/dev/null 2>&1 || true
		rm -f "$dir/loaded"
		run "go run ./cmd/culprit simulate --es $url --index-prefix bench5m- --peak-per-min $peak --seed 7 --out $dir/sim" "$raw/es5m-load.txt"
		curl -fsS -X POST "$url/bench5m-*/_refresh" >/dev/null
		count=$(curl -fsS "$url/bench5m-*/_count" | sed -n 's/.*"count":\([0-9]*\).*/\1/p')
		echo "$count $peak" >"$dir/loaded"
	fi
	local bench="go test -run '^\$' -bench CorrelateES -benchtime 3x"
	local env="CULPRIT_BENCH_ES_URL=$url CULPRIT_BENCH_ES_INDEX='bench5m-*'"
	run "$env $bench -count 3 ./sources/elasticsearch/" "$raw/es5m-warm.txt"
	run "CULPRIT_BENCH_ES_COLD=1 $env $bench -count 3 ./sources/elasticsearch/" "$raw/es5m-cold.txt"
	run "CULPRIT_BENCH_ES_DEBUG=1 CULPRIT_BENCH_ES_COLD=1 $env $bench -count 1 ./sources/elasticsearch/" "$raw/es5m-debug.txt"
	"$bd" es5m -warm "$raw/es5m-warm.txt" -cold "$raw/es5m-cold.txt" >"$raw/es5m.md"
	"$bd" es5m-requests <"$raw/es5m-debug.txt" >"$raw/es5m-requests.md"
	local load="culprit simulate --es \$ES --index-prefix bench5m- --peak-per-min $peak --seed 7 ($count documents)"
	local shown="CULPRIT_BENCH_ES_URL=\$ES CULPRIT_BENCH_ES_INDEX='bench5m-*'"
	emit es5m "$load; [CULPRIT_BENCH_ES_COLD=1] $shown $bench -count 3 ./sources/elasticsearch/" "$raw/es5m.md"
	emit es5m-requests "$load; CULPRIT_BENCH_ES_DEBUG=1 CULPRIT_BENCH_ES_COLD=1 $shown $bench -count 1 ./sources/elasticsearch/" "$raw/es5m-requests.md"
}

# TestIncrementalCost (sources/elasticsearch/incremental_bench_test.go):
# issue 17's figures, steady-state evaluations with and without
# sources/cache, by lookback and by traffic, and the projection to the
# founding story's 2.4 M documents a minute.
step_incremental() {
	local url=${BENCH_INCR_ES_URL:-${CULPRIT_TEST_ES_URL:-http://127.0.0.1:9200}}
	local cmd="go test -count=1 -run TestIncrementalCost -v -timeout 60m ./sources/elasticsearch/"
	run "CULPRIT_BENCH_INCR_ES_URL=$url CULPRIT_BENCH_INCR_OUT=$raw/incremental.md $cmd" "$raw/incremental.txt"
	[[ -s $raw/incremental.md ]] || die "incremental: the test wrote no figures (is $url reachable?)"
	emit incremental "CULPRIT_BENCH_INCR_ES_URL=\$ES $cmd" "$raw/incremental.md"
}

step_intake() {
	local cmd
	cmd="$(with_env CULPRIT_LOAD_RATE CULPRIT_LOAD_SECONDS)go test -run '^\$' -bench IntakeLoadSQLite -benchtime 1x ./sources/intake/"
	run "$cmd" "$raw/intake.txt"
	"$bd" intake <"$raw/intake.txt" >"$raw/intake.md"
	emit intake "$cmd" "$raw/intake.md"
}

# BenchmarkServeSlowClients (cmd/culprit/serve_limits_test.go): the daemon
# in a child process with a descriptor limit of 800 and the default http
# limits, 1,000 slow clients, probes of /healthz, a signed GitHub webhook
# and a signed Slack command. Both ends of each connection are local: the
# benchmark raises its own soft descriptor limit (the hard one must allow
# about 2,300; the step fails, saying so, if it does not). Then
# BenchmarkChartsConcurrent: 500 requests at once for one chart.
step_slowload() {
	local cmd
	cmd="$(with_env CULPRIT_SLOWLOAD_CONNS CULPRIT_SLOWLOAD_SECONDS)go test -run '^\$' -bench 'ServeSlowClients|ChartsConcurrent' -benchtime 1x ./cmd/culprit/ ./escalate/evidence/"
	run "$cmd" "$raw/slowload.txt"
	"$bd" slowload <"$raw/slowload.txt" >"$raw/slowload.md"
	emit slowload "$cmd" "$raw/slowload.md"
}

step_retention() {
	local cmd="go test -run '^\$' -bench StoreQuarter -benchtime 1x -timeout 30m ./escalate/store/"
	run "$cmd" "$raw/retention.txt"
	"$bd" retention <"$raw/retention.txt" >"$raw/retention.md"
	emit retention "$cmd" "$raw/retention.md"
}

# The run of TestServeFridayES (cmd/culprit/serve_e2e_test.go, e2eSim and
# e2eConfig) on the file source: the Friday incident at 15,000 requests a
# minute, deploy at 16:00, rollback at 17:10, evaluated every minute with a
# 60-minute lookback and no ingestion lag, from 15:45.
step_e2e() {
	local dir=$bench/e2e seed dirs=()
	rm -rf "$dir"
	mkdir -p "$dir"
	go build -o "$bench/culprit" ./cmd/culprit
	cat >"$dir/culprit.yml" <<-'EOF'
		evaluation:
		  interval: 1m
		  lookback: 60m
		routes:
		  - name: always
		    action: page
		pagerduty:
		  routing_key: {env: CULPRIT_BENCH_UNUSED_KEY}
	EOF
	local sim=(-start 2026-11-20T14:45:00Z -duration 2h55m -onset 75m -rollback 2h25m -peak 15000)
	local bt=(--lag 0 --from 2026-11-20T15:45:00Z --to 2026-11-20T16:45:00Z --format json)
	for seed in ${E2E_SEEDS:-1 2 3 4}; do
		"$bd" simulate "${sim[@]}" -seed "$seed" -out "$dir/$seed" >&2
		"$bench/culprit" backtest --config "$dir/culprit.yml" "${bt[@]}" --logs "$dir/$seed/logs.ndjson.gz" \
			--deploys "$dir/$seed/deploys.json" --tickets "$dir/$seed/tickets.json" >"$dir/$seed/backtest.json"
		rm -f "$dir/$seed/logs.ndjson.gz" # 110 MB each
		dirs+=("$dir/$seed")
	done
	"$bd" e2e "${dirs[@]}" >"$raw/e2e.md"
	emit e2e "for each seed in ${E2E_SEEDS:-1 2 3 4}: benchdoc simulate ${sim[*]} -seed \$seed -out \$seed && culprit backtest --config culprit.yml ${bt[*]} --logs \$seed/logs.ndjson.gz --deploys \$seed/deploys.json --tickets \$seed/tickets.json (culprit.yml as in scripts/bench/regen.sh: interval 1m, lookback 60m, one route paging everything)" "$raw/e2e.md"
}

step_ruptures() {
	local cmd
	cmd="$(with_env SHAPES SEEDS ROLLBACK REPEATS PYTHON)bash scripts/bench/run-ruptures.sh"
	echo "+ $cmd" >&2
	eval "$cmd" >"$raw/ruptures-tables.md"
	"$bd" ruptures -results "$bench/ruptures/results.json" -tables "$raw/ruptures-tables.md" \
		-plots "$plots" -doc "$doc" >"$raw/ruptures.md"
	emit ruptures "$cmd" "$raw/ruptures.md"
}

step_elastalert() {
	local cmd
	cmd="$(with_env ES RUNS PEAK PREFIX OUT)bash scripts/bench/run-elastalert.sh"
	echo "+ $cmd" >&2
	eval "$cmd" >"$raw/elastalert.md"
	emit elastalert "$cmd" "$raw/elastalert.md"
}

step_tickets() {
	local cmd
	cmd="CULPRIT_TICKETS_SEEDS=${TICKETS_SEEDS:-1,2,3} go test -count=1 -run TestRelatedTicketsPrecisionRecall -v -timeout 30m ./sources/simulate/"
	run "CULPRIT_TICKETS_OUT=$raw/tickets.md $cmd" "$raw/tickets.txt"
	emit tickets "$cmd" "$raw/tickets.md"
}

step_corpus() {
	local out=$bench/corpus cmd
	rm -rf "$out"
	mkdir -p "$out"
	# The test runs in cmd/culprit: the results path must be absolute.
	cmd="CULPRIT_CORPUS=1 CULPRIT_CORPUS_SEEDS=${CULPRIT_CORPUS_SEEDS:-1..7} CULPRIT_CORPUS_PEAK=${CULPRIT_CORPUS_PEAK:-6000}"
	cmd+=" CULPRIT_CORPUS_QUIET_DAYS=${CULPRIT_CORPUS_QUIET_DAYS:-28} $(with_env CULPRIT_CORPUS_WARMUP CULPRIT_CORPUS_DIR CULPRIT_CORPUS_PARALLEL)"
	cmd+="go test -count=1 -run TestCorpus -v -timeout 3h ./cmd/culprit/"
	run "CULPRIT_CORPUS_OUT=$out/corpus.json $cmd" "$raw/corpus.txt"
	"$bd" corpus -json "$out/corpus.json" -md "$out/corpus.md" -plots "$plots" -doc "$doc" >"$raw/corpus.md"
	emit corpus "$cmd" "$raw/corpus.md"
}

# main selects the steps, runs them, splices their fragments and reports.
# Bash reads a script as it runs it; with everything in main the whole file
# is read before anything runs, so editing it during an hour-long run (a
# pull, a checkout) cannot change what the run does.
main() {
	local failed=() report=() total_start=$SECONDS s rc took status t
	local only=() skip=() selected=() w o=${BENCH_ONLY:-} k=${BENCH_SKIP:-}
	for w in ${o//,/ }; do
		check_step "$w" BENCH_ONLY
		only+=("$w")
	done
	for w in ${k//,/ }; do
		check_step "$w" BENCH_SKIP
		skip+=("$w")
	done
	for s in "${all_steps[@]}"; do
		if ((${#only[@]})) && [[ " ${only[*]} " != *" $s "* ]]; then continue; fi
		if ((${#skip[@]})) && [[ " ${skip[*]} " == *" $s "* ]]; then continue; fi
		selected+=("$s")
	done
	((${#selected[@]})) || die "no step selected (BENCH_ONLY=${BENCH_ONLY:-} BENCH_SKIP=${BENCH_SKIP:-})"
	[[ -f $doc ]] || die "no document $doc"

	# Fragments of earlier runs are never spliced: only what this run measured.
	rm -rf "$frag"
	mkdir -p "$frag" "$raw"
	echo "regen: building benchdoc" >&2
	go build -o "$bd" ./scripts/bench/benchdoc

	for s in "${selected[@]}"; do
		echo "regen: == step $s" >&2
		step_start=$SECONDS
		# A subshell of its own with -e in force (a function called from an
		# if or || would run with -e ignored): the first failing command ends
		# the step, and the step's failure does not end the run.
		set +e
		(
			set -e
			"step_$s"
		)
		rc=$?
		set -e
		took=$((SECONDS - step_start))
		status=ok
		if ((rc != 0)); then
			status="FAILED (exit $rc)"
			failed+=("$s")
		fi
		report+=("$(printf '%-11s %4dm%02ds  %s' "$s" $((took / 60)) $((took % 60)) "$status")")
		echo "regen: step $s: $status after ${took}s" >&2
	done

	if compgen -G "$frag/*.md" >/dev/null; then
		"$bd" splice -doc "$doc" -fragments "$frag"
	fi

	echo
	echo "step         time     status"
	printf '%s\n' "${report[@]}"
	t=$((SECONDS - total_start))
	printf '%-11s %4dm%02ds\n' total $((t / 60)) $((t % 60))
	if ((${#failed[@]})); then
		echo "regen: failed: ${failed[*]}; their regions in $doc are unchanged" >&2
		exit 1
	fi
}

main "$@"
exit $?
