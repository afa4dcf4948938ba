#!/usr/bin/env bash
# Baselines for issue 6: ElastAlert2 (spike and new_term rules) and a static
# 5xx-share threshold, run against Elasticsearch on the same simulated runs
# culprit is judged on, with culprit's own backtest on the same indices as
# the first row.
#
#   bash scripts/bench/run-elastalert.sh     # about 25 min on 2 cores
#
# Steps: create the virtualenv .bench/ea-venv (elastalert2 from PyPI), build
# culprit, load each run with `culprit simulate` into its own indices
# ${PREFIX}SHAPE-SEED-*, score every detector with elastalert_bench.py
# (which also replays each run through `culprit backtest --es` from the end
# of the learning window, with the run's deploys.json and tickets.json and
# scripts/bench/elastalert/culprit.yml), print the Markdown tables, and
# delete the indices (also on failure or Ctrl-C).
#
# Environment:
#   ES      Elasticsearch URL (default http://127.0.0.1:9200; security off)
#   RUNS    space-separated SHAPE:SEED list (default: four incident shapes
#           x seeds 1,2 and one quiet run)
#   PEAK    --peak-per-min for culprit simulate (default: the simulator's, 1200)
#   PREFIX  index prefix (default bench-ea-); every index under it that a run
#           of this script names is deleted before loading and afterwards
#   KEEP=1  keep the indices (to rerun elastalert_bench.py by hand)
#   CULPRIT_CONFIG  culprit's configuration for the backtest, relative to
#           the repository root (default scripts/bench/elastalert/culprit.yml:
#           the defaults plus a route that pages everything)
#   OUT     output directory (default .bench/ea); results.json, results.md,
#           the runs' truth/deploys/tickets, load.log and work/ (rendered
#           rules, one elastalert log per rule and run, culprit's backtest
#           report and log per run) land there
set -euo pipefail

cd "$(dirname "$0")/../.."
ES=${ES:-http://127.0.0.1:9200}
PREFIX=${PREFIX:-bench-ea-}
OUT=${OUT:-.bench/ea}
CULPRIT_CONFIG=${CULPRIT_CONFIG:-scripts/bench/elastalert/culprit.yml}
RUNS=${RUNS:-"new_error_provider:1 new_error_provider:2 error_increase:1 error_increase:2 slow_ramp:1 slow_ramp:2 region_outage:1 region_outage:2 quiet:1"}
VENV=.bench/ea-venv
# 2.19.0 imports pytz without declaring it.
EA_PKGS=(elastalert2==2.19.0 pytz)

die() { echo "run-elastalert: $*" >&2; exit 1; }

case $PREFIX in
bench-*) ;;
*) die "PREFIX must start with bench- so that cleanup cannot touch other indices: $PREFIX" ;;
esac

curl -fsS "$ES/_cluster/health" >/dev/null || die "no Elasticsearch answers at $ES"
[[ -r $CULPRIT_CONFIG ]] || die "cannot read CULPRIT_CONFIG $CULPRIT_CONFIG"

if [[ ! -x $VENV/bin/elastalert-test-rule ]]; then
	echo "creating $VENV" >&2
	python3 -m venv "$VENV"
	"$VENV/bin/pip" install -q --upgrade pip
	"$VENV/bin/pip" install -q "${EA_PKGS[@]}" || die "pip install ${EA_PKGS[*]} failed"
fi
"$VENV/bin/python" -c 'import elastalert.test_rule' || die "elastalert2 does not import in $VENV"

mkdir -p "$OUT/runs"
# One build instead of a `go run` per run: same code, no repeated link.
go build -o "$OUT/culprit" ./cmd/culprit
# Fail now, not after loading the runs, when the config does not validate.
"$OUT/culprit" rules check "$CULPRIT_CONFIG" >&2 || die "culprit rules check $CULPRIT_CONFIG failed"

# delete_run_indices NAME: the run's indices, by exact name (the cluster
# refuses wildcard deletes, and exact names keep cleanup to what we made).
delete_run_indices() {
	local names
	names=$(curl -fsS "$ES/_cat/indices/${PREFIX}$1-*?h=index" 2>/dev/null | tr -d ' ' | paste -sd, -) || true
	if [[ -n $names ]]; then
		curl -fsS -X DELETE "$ES/$names" >/dev/null
	fi
}

cleanup() {
	local rc=$?
	if [[ ${KEEP:-0} != 1 ]]; then
		for r in $RUNS; do delete_run_indices "${r%%:*}-${r##*:}" || echo "run-elastalert: could not delete ${PREFIX}${r%%:*}-${r##*:}-*" >&2; done
		echo "deleted the ${PREFIX}* indices of this run" >&2
	fi
	exit $rc
}
trap cleanup EXIT

peak=()
[[ -n ${PEAK:-} ]] && peak=(--peak-per-min "$PEAK")
: >"$OUT/load.log"
load_start=$SECONDS
rm -rf "$OUT/runs"
mkdir -p "$OUT/runs"
for r in $RUNS; do
	shape=${r%%:*} seed=${r##*:} name=${r%%:*}-${r##*:}
	delete_run_indices "$name"
	"$OUT/culprit" simulate --es "$ES" --index-prefix "${PREFIX}${name}-" --shape "$shape" --seed "$seed" \
		"${peak[@]}" --out "$OUT/runs/$name" 2>&1 | tee -a "$OUT/load.log" >&2
done
echo "loaded $(wc -w <<<"$RUNS") runs in $((SECONDS - load_start)) s" | tee -a "$OUT/load.log" >&2
# Make every document searchable before the rules look.
curl -fsS -X POST "$ES/${PREFIX}*/_refresh" >/dev/null

bench_start=$SECONDS
"$VENV/bin/python" scripts/bench/elastalert_bench.py --runs "$OUT/runs" --es "$ES" --index-prefix "$PREFIX" \
	--out "$OUT/results.json" --work "$OUT/work" \
	--culprit "$OUT/culprit" --culprit-config "$CULPRIT_CONFIG" | tee "$OUT/results.md"
echo "scored in $((SECONDS - bench_start)) s; full results in $OUT/results.json" >&2
