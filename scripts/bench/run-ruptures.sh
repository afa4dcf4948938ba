#!/usr/bin/env bash
# ruptures (PELT, Binseg) side by side with culprit's change-point detectors
# on the error series of simulated incidents. Prints Markdown tables; the
# full results land in .bench/ruptures/results.json.
#
#   bash scripts/bench/run-ruptures.sh
#
# Environment (defaults in brackets):
#   SHAPES    [new_error_provider,error_increase,slow_ramp,region_outage]
#   SEEDS     [1,2,3,4,5]
#   ROLLBACK  [5h] rollback offset for deploy-caused shapes (0 = none)
#   REPEATS   [3]  timing repeats, best taken
#   PYTHON    [python3] interpreter for the virtualenv
set -euo pipefail

cd "$(dirname "$0")/../.."
root=$PWD
bench=$root/.bench
out=$bench/ruptures
series=$out/series
mkdir -p "$out"

if [[ ! -x $bench/venv/bin/python ]]; then
	"${PYTHON:-python3}" -m venv "$bench/venv"
fi
if ! "$bench/venv/bin/python" -c 'import ruptures, numpy' 2>/dev/null; then
	"$bench/venv/bin/pip" install --quiet ruptures numpy
fi

echo "building culprit" >&2
go build -o "$bench/culprit" ./cmd/culprit

echo "exporting series to $series" >&2
rm -rf "$series"
CULPRIT_EXPORT_DIR=$series \
CULPRIT_EXPORT_SHAPES=${SHAPES:-new_error_provider,error_increase,slow_ramp,region_outage} \
CULPRIT_EXPORT_SEEDS=${SEEDS:-1,2,3,4,5} \
CULPRIT_EXPORT_ROLLBACK=${ROLLBACK:-5h} \
	go test -count=1 -timeout 30m -run '^TestExportBaselineSeries$' ./cmd/culprit/ >"$out/export.log"

echo "go benchmark of culprit's detectors on the same series" >&2
CULPRIT_EXPORT_DIR=$series GOMAXPROCS=1 \
	go test -run '^$' -bench '^BenchmarkBaselines$' -count 3 ./cmd/culprit/ >"$out/gobench.txt"

echo "ruptures and culprit changepoints" >&2
GOMAXPROCS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$bench/venv/bin/python" scripts/bench/ruptures_bench.py \
	--series "$series" --culprit "$bench/culprit" --go-bench "$out/gobench.txt" \
	--repeats "${REPEATS:-3}" --out "$out/results.json" 2>"$out/per-series.log"
echo "results: $out/results.json; per-series change points: $out/per-series.log" >&2
