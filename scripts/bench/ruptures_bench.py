#!/usr/bin/env python3
"""ruptures (PELT, Binseg) against culprit's change-point detectors.

Reads the series written by TestExportBaselineSeries (cmd/culprit/
baselines_test.go): NAME.csv (timestamp,value,requests) and NAME.json (the
truth as change-point indices, plus the correlator's own answers). Runs
ruptures on each series and `culprit changepoints` on each CSV in the same
session, scores every method with TCPDBench's F1 (margin 5, the definition of
correlate/changepoint/tcpd.go) and the onset's position error, writes the
results as JSON and prints Markdown tables on stdout.

Settings (no per-series tuning, chosen before looking at the scores):
  * min_size=5 (culprit MeanShift's shortest segment), jump=1 (ruptures'
    default jump=5 would only allow change points at multiples of 5).
  * l2: penalty 2·σ̂²·log n, the BIC for a Gaussian mean shift (a location
    and a mean per change) in the l2 cost's units (sum of squares). σ̂ is
    the standard deviation of the first differences divided by √2, which a
    few level shifts barely move (the whole series' deviation would count
    the shift itself as noise).
  * rbf: penalty 2·log n. The rbf cost is in kernel units (at most one per
    point), so there is no variance to scale by; ruptures' bandwidth is its
    median heuristic. This is a usual default, not a calibrated one.
  * Binseg with the same penalty, since the number of changes is unknown.

Timing: each ruptures call (construct, fit, predict) is timed with
time.perf_counter, best of --repeats; `culprit changepoints` is timed as the
wall time of the process (startup and CSV parsing included), best of
--repeats. In-process figures for culprit come from the Go benchmark
BenchmarkBaselines when its output is given with --go-bench: MeanShift,
PELTPoisson and CorrelatorSeries (correlate.Run on the series alone, the
answers the export recorded as culprit_correlator_series), each one op for
all series, the fastest of its -count runs.
"""

import argparse
import bisect
import glob
import json
import math
import os
import re
import subprocess
import sys
import time

import numpy as np
import ruptures as rpt

MIN_SIZE = 5
PELT_DEFAULTS = "ruptures PELT l2, min_size=2 jump=5"
MEANSHIFT = "culprit changepoints (MeanShift)"
PELT_POISSON = "culprit PELT-Poisson (segmentation stage)"
CORRELATOR = "culprit correlator on the series alone (detect, NB test, onset, recovery)"
CORRELATE = "culprit correlate (finding onset/recovery)"


def load_series(path):
    vals = []
    with open(path) as f:
        header = f.readline().strip().split(",")
        col = header.index("value")
        for line in f:
            vals.append(float(line.rstrip("\n").split(",")[col]))
    return np.asarray(vals, dtype=float)


def sigma_diff(x):
    d = np.diff(x)
    s = float(np.std(d)) / math.sqrt(2) if len(d) > 1 else 0.0
    return s if s > 0 else 1.0


def ruptures_methods():
    """name -> function(x) returning change points (first index of each new segment)."""

    def l2_pen(x):
        return 2 * sigma_diff(x) ** 2 * math.log(len(x))

    def rbf_pen(x):
        return 2 * math.log(len(x))

    def make(algo, model, pen, min_size=MIN_SIZE, jump=1):
        def f(x):
            est = algo(model=model, min_size=min_size, jump=jump).fit(x)
            return [int(b) for b in est.predict(pen=pen(x))[:-1]]

        return f

    return {
        "ruptures PELT l2": make(rpt.Pelt, "l2", l2_pen),
        "ruptures PELT rbf": make(rpt.Pelt, "rbf", rbf_pen),
        "ruptures Binseg l2": make(rpt.Binseg, "l2", l2_pen),
        "ruptures Binseg rbf": make(rpt.Binseg, "rbf", rbf_pen),
        # ruptures' own defaults, for speed: candidates every 5th index only.
        PELT_DEFAULTS: make(rpt.Pelt, "l2", l2_pen, min_size=2, jump=5),
    }


# --- TCPDBench F1, as correlate/changepoint/tcpd.go -------------------------


def clean_predictions(p, n):
    return sorted({v for v in p if 1 <= v <= n - 2})


def with_zero(p):
    return sorted(set(p) | {0})


def true_positives(truth, x, margin):
    used = [False] * len(x)
    tp = 0
    for tau in truth:
        lo = bisect.bisect_left(x, tau - margin)
        best = -1
        j = lo
        while j < len(x) and x[j] <= tau + margin:
            if not used[j] and (best < 0 or abs(x[j] - tau) < abs(x[best] - tau)):
                best = j
            j += 1
        if best >= 0:
            used[best] = True
            tp += 1
    return tp


def f1(annotations, predicted, n, margin):
    x = with_zero(clean_predictions(predicted, n))
    union = []
    recall = 0.0
    for a in annotations:
        tk = with_zero(a)
        union += tk
        recall += true_positives(tk, x, margin) / len(tk)
    recall /= len(annotations)
    union = sorted(set(union))
    precision = true_positives(union, x, margin) / len(x)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def score(truth, cps, n, onset, recovery, margin):
    """F1, the onset's position error and the unmatched change points."""
    cps = clean_predictions(cps, n)
    end = recovery - margin if recovery is not None else n
    # The first change point at or after onset-margin, and before the
    # recovery's own margin, dates the onset. These are offline segmentations that see the whole
    # series, so this is a position error, not an online alerting delay.
    after = [c for c in cps if onset - margin <= c < end]
    delay = after[0] - onset if after else None
    extra = len(cps) - true_positives(sorted(truth), cps, margin)
    return {"f1": f1([truth], cps, n, margin), "delay": delay, "extra": extra}


def best_of(fn, repeats):
    best, out = math.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def run_cli(binary, csv_path, repeats):
    def call():
        r = subprocess.run(
            [binary, "changepoints", "--input", csv_path, "--format", "json"],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            raise RuntimeError(f"culprit changepoints {csv_path}: {r.stderr.strip()}")
        return json.loads(r.stdout)["changepoints"]

    return best_of(call, repeats)


def parse_go_bench(path):
    """Benchmark name -> list of ns/op over -count runs."""
    out = {}
    pat = re.compile(r"^BenchmarkBaselines/(\w+)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op")
    with open(path) as f:
        for line in f:
            m = pat.match(line)
            if m:
                out.setdefault(m.group(1), []).append(float(m.group(2)))
    return out


def fmt(v, spec):
    return "–" if v is None else format(v, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", required=True, help="directory written by TestExportBaselineSeries")
    ap.add_argument("--culprit", required=True, help="culprit binary")
    ap.add_argument("--go-bench", help="output of go test -bench BenchmarkBaselines")
    ap.add_argument("--out", required=True, help="results JSON to write")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--margin", type=int, default=5)
    args = ap.parse_args()

    metas = sorted(glob.glob(os.path.join(args.series, "*.json")))
    if not metas:
        sys.exit(f"no series in {args.series}")
    methods = ruptures_methods()
    order = list(methods) + [MEANSHIFT, PELT_POISSON, CORRELATOR, CORRELATE]
    runs = []
    for mp in metas:
        with open(mp) as f:
            meta = json.load(f)
        csv_path = mp[: -len(".json")] + ".csv"
        x = load_series(csv_path)
        n, onset, rec = len(x), meta["onset_index"], meta["recovery_index"]
        truth = meta["truth_cps"]
        res = {"name": meta["name"], "shape": meta["shape"], "seed": meta["seed"], "n": n,
               "truth_cps": truth, "methods": {}}
        for name, fn in methods.items():
            try:
                cps, secs = best_of(lambda: fn(x), args.repeats)
            except Exception as e:  # a failed method is recorded, not fatal
                res["methods"][name] = {"error": repr(e)}
                continue
            res["methods"][name] = {"cps": cps, "seconds": secs, **score(truth, cps, n, onset, rec, args.margin)}
        cps, secs = run_cli(args.culprit, csv_path, args.repeats)
        if cps != meta["culprit_meanshift"]:
            print(f"warning: {meta['name']}: CLI {cps} != exported MeanShift {meta['culprit_meanshift']}",
                  file=sys.stderr)
        res["methods"][MEANSHIFT] = {"cps": cps, "seconds": secs, **score(truth, cps, n, onset, rec, args.margin)}
        cps = meta["culprit_pelt_poisson"]
        res["methods"][PELT_POISSON] = {"cps": cps, "seconds": None, **score(truth, cps, n, onset, rec, args.margin)}
        if "culprit_correlator_series" not in meta:
            sys.exit(f"{mp}: no culprit_correlator_series; export the series again")
        cps = meta["culprit_correlator_series"]
        res["methods"][CORRELATOR] = {"cps": cps, "seconds": None, "found": bool(cps),
                                     **score(truth, cps, n, onset, rec, args.margin)}
        c = meta["correlate"]
        cps = [i for i in (c["onset_index"], c["recovery_index"]) if i is not None] if c["found"] else []
        res["methods"][CORRELATE] = {"cps": cps, "seconds": c["seconds"], "found": c["found"],
                                    **score(truth, cps, n, onset, rec, args.margin)}
        runs.append(res)
        print(f"{meta['name']}: truth {truth} " + "; ".join(
            f"{k.split(' (')[0]} {v.get('cps', v.get('error'))}" for k, v in res["methods"].items()), file=sys.stderr)

    go = parse_go_bench(args.go_bench) if args.go_bench else {}
    summary = {}
    for m in order:
        rs = [r["methods"][m] for r in runs if "error" not in r["methods"][m]]
        delays = [r["delay"] for r in rs if r["delay"] is not None]
        secs = [r["seconds"] for r in rs if r["seconds"] is not None]
        summary[m] = {
            "runs": len(rs),
            "errors": len(runs) - len(rs),
            "mean_f1": float(np.mean([r["f1"] for r in rs])) if rs else None,
            "onset_found": len(delays),
            "mean_delay": float(np.mean(delays)) if delays else None,
            "median_delay": float(np.median(delays)) if delays else None,
            "mean_extra": float(np.mean([r["extra"] for r in rs])) if rs else None,
            "total_seconds": float(sum(secs)) if len(secs) == len(rs) and rs else None,
        }
    go_ms = {k: min(v) / 1e6 for k, v in go.items()}
    if "MeanShift" in go_ms:
        summary[MEANSHIFT]["in_process_total_seconds"] = go_ms["MeanShift"] / 1e3
    if "PELTPoisson" in go_ms:
        summary[PELT_POISSON]["in_process_total_seconds"] = go_ms["PELTPoisson"] / 1e3
        summary[PELT_POISSON]["total_seconds"] = go_ms["PELTPoisson"] / 1e3
    if "CorrelatorSeries" in go_ms:
        summary[CORRELATOR]["in_process_total_seconds"] = go_ms["CorrelatorSeries"] / 1e3
        summary[CORRELATOR]["total_seconds"] = go_ms["CorrelatorSeries"] / 1e3

    with open(args.out, "w") as f:
        json.dump({"margin": args.margin, "repeats": args.repeats, "min_size": MIN_SIZE,
                   "ruptures_version": rpt.__version__, "go_bench_ns_per_op": go,
                   "summary": summary, "runs": runs}, f, indent=2)

    shapes = sorted({r["shape"] for r in runs})
    seeds = sorted({r["seed"] for r in runs})
    print(f"{len(runs)} series ({', '.join(shapes)}; seeds {', '.join(map(str, seeds))}), "
          f"{runs[0]['n']} one-minute buckets each; F1 margin {args.margin}; "
          f"times best of {args.repeats}, summed over the series.\n")
    print("| method | mean F1 | onset found | mean / median onset error (min) | extra CPs per run | total time (ms) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for m in order:
        s = summary[m]
        t = s["total_seconds"]
        tt = fmt(t * 1e3 if t is not None else None, ".1f")
        if m == MEANSHIFT and "in_process_total_seconds" in s:
            tt += f" process / {s['in_process_total_seconds'] * 1e3:.2f} in-process"
        if m in (PELT_POISSON, CORRELATOR):
            tt += " in-process" if t is not None else " (not timed)"
        if m == CORRELATE:
            tt += " (whole pipeline from the gzipped logs, not comparable)"
        err = f" ({s['errors']} failed)" if s["errors"] else ""
        print(f"| {m}{err} | {fmt(s['mean_f1'], '.3f')} | {s['onset_found']}/{s['runs']} | "
              f"{fmt(s['mean_delay'], '+.1f')} / {fmt(s['median_delay'], '+.0f')} | "
              f"{fmt(s['mean_extra'], '.1f')} | {tt} |")

    print("\nMean F1 per shape:\n")
    print("| method | " + " | ".join(shapes) + " |")
    print("| --- |" + " --- |" * len(shapes))
    for m in order:
        cells = []
        for sh in shapes:
            v = [r["methods"][m]["f1"] for r in runs if r["shape"] == sh and "error" not in r["methods"][m]]
            cells.append(fmt(float(np.mean(v)) if v else None, ".3f"))
        print(f"| {m} | " + " | ".join(cells) + " |")

    pelt = summary["ruptures PELT l2"]["total_seconds"]
    cli = summary[MEANSHIFT]["total_seconds"]
    inproc = summary[MEANSHIFT].get("in_process_total_seconds")
    print()
    if pelt and cli:
        print(f"- Speed ratio ruptures PELT l2 / culprit changepoints (process wall time): {pelt / cli:.2f}×")
    if pelt and inproc:
        print(f"- Speed ratio ruptures PELT l2 / culprit MeanShift (in-process, Go benchmark): {pelt / inproc:.0f}×")
    dflt = summary[PELT_DEFAULTS]["total_seconds"]
    if dflt and inproc:
        print(f"- Speed ratio {PELT_DEFAULTS} / culprit MeanShift (in-process): {dflt / inproc:.0f}×")
    rbf = summary["ruptures PELT rbf"]["total_seconds"]
    if rbf and inproc:
        print(f"- Speed ratio ruptures PELT rbf / culprit MeanShift (in-process): {rbf / inproc:.0f}×")
    corr = summary[CORRELATOR]["total_seconds"]
    for name, t in (("ruptures PELT l2", pelt), ("ruptures PELT rbf", rbf)):
        if t and corr:
            print(f"- Speed ratio {name} / {CORRELATOR.split(' (')[0]} (in-process): {t / corr:.0f}×")


if __name__ == "__main__":
    main()
