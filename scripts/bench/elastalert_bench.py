"""Score culprit, ElastAlert2 rules and a static 5xx-share threshold on simulated runs.

Usage:
  elastalert_bench.py --runs DIR [--es URL] [--index-prefix bench-ea-]
                      [--config FILE] [--rules DIR] [--learn 2h]
                      [--python PY] [--out results.json] [--work DIR]
                      [--culprit BIN [--culprit-config FILE]]

DIR holds one folder per simulated run, named SHAPE-SEED, each with the
truth.json that `culprit simulate --out` wrote; the run's documents are in
Elasticsearch under INDEX-PREFIX + SHAPE-SEED + "-*". For every run this
script

  * runs each ElastAlert2 rule in --rules (a YAML template: INDEX and
    START_DATE are filled in) through elastalert_record.py, i.e.
    elastalert-test-rule over the run's whole time range, and collects the
    matches with their event times;
  * with --culprit, replays the run through `culprit backtest --es` on the
    same indices, with the run's deploys.json and tickets.json, from the
    end of the learning window to the end of the run (the documents before
    it are in the index, so they are its history), with --culprit-config
    (the defaults plus a route that pages everything), and keeps every
    PagerDuty trigger as an alert at its tick;
  * computes the static-threshold baseline from Elasticsearch itself: per
    minute, the share of documents with http.response.status_code >= 500,
    fleet-wide and per service; an alert fires when the share has been
    above the threshold (1% or 2%) for 5 consecutive complete minutes, at
    the end of the fifth, and re-arms after a minute at or below it;
  * scores each detector against the run's truth: alerts before the onset
    (false alerts; every alert in a quiet run), the delay of the first alert
    at or after the onset, and of the first one on the truth service.

The new_term rules need history the simulated runs do not have (they start
empty), so the first --learn of each run is their learning window
(terms_window_size) and only the rest is evaluated. The spike rule and the
thresholds are evaluated over the whole run: they have their own warm-up
(a full reference window) and it costs them nothing to see it.

culprit is scored like the others, with one stricter rule: an alert
counts as the detection only when it is for the truth service, at or after
the onset, and its incident's signature or headline carries the truth's
message (the injected error class, as cmd/culprit/corpus_test.go asks);
any other trigger after the onset is neither a detection nor counted as a
false alert (as for the other detectors, only alerts before the onset are).
Its delay is the tick that paged minus the onset, so it includes the
ingestion lag; the ElastAlert rows' delay is the event time of the document
that completed the match.

It writes the full results (every alert time) to --out and a Markdown
summary to stdout.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))

THRESHOLDS = (0.01, 0.02)
SUSTAIN_MIN = 5


def parse_time(s):
    """RFC 3339 with Z or offset, with or without fractional seconds."""
    s = s.replace("Z", "+00:00")
    t = datetime.fromisoformat(s)
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc)


def fmt_time(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration(s):
    m = re.fullmatch(r"(\d+)([smh])", s)
    if not m:
        raise argparse.ArgumentTypeError("duration like 2h, 90m or 30s: %r" % s)
    n, unit = int(m.group(1)), m.group(2)
    return timedelta(seconds=n * {"s": 1, "m": 60, "h": 3600}[unit])


def es_post(es, path, body):
    req = urllib.request.Request(
        es.rstrip("/") + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        raise RuntimeError("elasticsearch %s: %s %s" % (path, e.code, e.read()[:500].decode(errors="replace"))) from e
    except urllib.error.URLError as e:
        raise RuntimeError("elasticsearch %s: %s" % (path, e.reason)) from e


def run_range(es, index):
    """The run's [first minute, end of its last minute) from the index."""
    res = es_post(es, "/%s/_search" % index, {
        "size": 0, "track_total_hits": True,
        "aggs": {"lo": {"min": {"field": "@timestamp"}}, "hi": {"max": {"field": "@timestamp"}}},
    })
    if not res["hits"]["total"]["value"]:
        raise RuntimeError("index %s holds no documents" % index)
    lo = datetime.fromtimestamp(res["aggregations"]["lo"]["value"] / 1000, timezone.utc)
    hi = datetime.fromtimestamp(res["aggregations"]["hi"]["value"] / 1000, timezone.utc)
    lo = lo.replace(second=0, microsecond=0)
    hi = hi.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return lo, hi, res["hits"]["total"]["value"]


def per_minute_5xx(es, index, start, end):
    """Per minute: (total, 5xx) fleet-wide and per service."""
    res = es_post(es, "/%s/_search" % index, {
        "size": 0,
        "query": {"range": {"@timestamp": {"gte": fmt_time(start), "lt": fmt_time(end)}}},
        "aggs": {"m": {
            "date_histogram": {
                "field": "@timestamp", "fixed_interval": "1m", "min_doc_count": 0,
                "extended_bounds": {"min": fmt_time(start), "max": fmt_time(end - timedelta(minutes=1))},
            },
            "aggs": {
                "err": {"filter": {"range": {"http.response.status_code": {"gte": 500}}}},
                "svc": {
                    "terms": {"field": "service.name.keyword", "size": 100},
                    "aggs": {"err": {"filter": {"range": {"http.response.status_code": {"gte": 500}}}}},
                },
            },
        }},
    })
    minutes = []
    for b in res["aggregations"]["m"]["buckets"]:
        svc = {s["key"]: (s["doc_count"], s["err"]["doc_count"]) for s in b["svc"]["buckets"]}
        minutes.append((
            datetime.fromtimestamp(b["key"] / 1000, timezone.utc),
            b["doc_count"], b["err"]["doc_count"], svc,
        ))
    return minutes


def sustained_alerts(series, threshold, sustain=SUSTAIN_MIN):
    """Alert times for a [(minute, total, errors)] series: the end of the
    `sustain`-th consecutive minute with errors/total > threshold; re-armed
    by a minute at or below it (an empty minute is at or below)."""
    out, run, armed = [], 0, True
    for minute, total, errors in series:
        over = total > 0 and errors / total > threshold
        if over:
            run += 1
            if run >= sustain and armed:
                out.append(minute + timedelta(minutes=1))
                armed = False
        else:
            run, armed = 0, True
    return out


def threshold_alerts(minutes, threshold):
    fleet = [{"time": t, "service": None} for t in
             sustained_alerts([(m, tot, err) for m, tot, err, _ in minutes], threshold)]
    services = sorted({s for _, _, _, svc in minutes for s in svc})
    per_svc = []
    for s in services:
        series = [(m, svc.get(s, (0, 0))[0], svc.get(s, (0, 0))[1]) for m, _, _, svc in minutes]
        per_svc += [{"time": t, "service": s} for t in sustained_alerts(series, threshold)]
    per_svc.sort(key=lambda a: a["time"])
    return fleet, per_svc


def render_rule(template, index, start_date, dst):
    with open(template) as f:
        text = f.read()
    text = text.replace("INDEX", index).replace("START_DATE", fmt_time(start_date))
    with open(dst, "w") as f:
        f.write(text)


def run_rule(python, config, rule_file, start, end, out_json, log):
    cmd = [python, os.path.join(HERE, "elastalert_record.py"), out_json, "--",
           "--config", config, "--stop-error",
           "--start", fmt_time(start), "--end", fmt_time(end), rule_file]
    with open(log, "w") as lf:
        # elastalert resolves rules_folder against the working directory.
        p = subprocess.run(cmd, stdout=lf, stderr=subprocess.STDOUT, cwd=os.path.dirname(config))
    if not os.path.exists(out_json):
        raise RuntimeError("%s produced no result (exit %d); see %s" % (rule_file, p.returncode, log))
    with open(out_json) as f:
        res = json.load(f)
    if p.returncode != 0 or res["errors"]:
        raise RuntimeError("%s failed (exit %d): %s; see %s" % (rule_file, p.returncode, res["errors"][:3], log))
    with open(log) as lf:
        text = lf.read()
    # A new_term rule whose learning aggregation found nothing (wrong field,
    # missing .keyword) only warns and then calls every value new: that is
    # a broken benchmark, not a detector's result.
    for bad in ("No results were found from all sub-aggregations", "Found no values for"):
        if bad in text:
            raise RuntimeError("%s learned no terms (%r); see %s" % (rule_file, bad, log))
    return res


def score(alerts, truth, eval_start, eval_end):
    """False alerts before the onset and delays after it, in minutes."""
    onset = parse_time(truth["onset"]) if truth.get("onset") else None
    quiet = truth["shape"] == "quiet" or onset is None
    times = sorted((a["time"], a["service"]) for a in alerts if eval_start <= a["time"] < eval_end)
    if quiet:
        return {"false": len(times), "after": 0, "delay_min": None, "delay_service_min": None,
                "first_service": None, "delay_message_min": None}
    before = [t for t, _ in times if t < onset]
    after = [(t, s) for t, s in times if t >= onset]
    on_svc = [t for t, s in after if s is None or s == truth.get("service")]
    # Only a rule that reports the document it fired on (new_term) can name
    # the injected error class itself.
    needle = truth.get("message_contains") or "\0"
    on_msg = sorted(a["time"] for a in alerts
                    if a["time"] >= onset and a["time"] < eval_end and needle in (a.get("error_message") or ""))
    return {
        "false": len(before),
        "after": len(after),
        "delay_min": round((after[0][0] - onset).total_seconds() / 60, 1) if after else None,
        "first_service": after[0][1] if after else None,
        "delay_service_min": round((on_svc[0] - onset).total_seconds() / 60, 1) if on_svc else None,
        "delay_message_min": round((on_msg[0] - onset).total_seconds() / 60, 1) if on_msg else None,
    }


def run_culprit(binary, config, es, index, run_dir, start, end, out_json, log):
    """`culprit backtest --es` over [start, end]: the parsed JSON report and
    its wall time. The report is kept in out_json, stderr in log."""
    cmd = [binary, "backtest", "--es", es, "--index", index,
           "--deploys", os.path.join(run_dir, "deploys.json"),
           "--tickets", os.path.join(run_dir, "tickets.json"),
           "--from", fmt_time(start), "--to", fmt_time(end),
           "--config", config, "--format", "json"]
    t0 = time.perf_counter()
    with open(out_json, "w") as of, open(log, "w") as lf:
        p = subprocess.run(cmd, stdout=of, stderr=lf)
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        with open(log) as lf:
            tail = lf.read()[-500:].strip()
        raise RuntimeError("culprit backtest on %s failed (exit %d): %s; see %s" % (index, p.returncode, tail, log))
    with open(out_json) as f:
        return json.load(f), seconds


def culprit_alerts(report, truth):
    """Every PagerDuty trigger of a backtest report, as an alert; "truth"
    marks the detections: the truth service, at or after the onset, and
    the incident's signature or headline carries the truth's message."""
    incidents = {i["id"]: i for i in report.get("incidents") or []}
    onset = parse_time(truth["onset"]) if truth.get("onset") else None
    needle = truth.get("message_contains") or ""
    alerts = []
    for m in report.get("messages") or []:
        if m["channel"] != "pagerduty" or m["action"] != "trigger":
            continue
        inc = incidents.get(m.get("incident_id"), {})
        t = parse_time(m["at"])
        hit = bool(truth.get("expect_page") and needle and onset is not None and t >= onset
                   and m.get("service") == truth.get("service")
                   and any(needle in (x or "") for x in (inc.get("signature"), inc.get("headline"), m.get("headline"))))
        alerts.append({"time": t, "service": m.get("service") or None, "truth": hit,
                       "error_message": inc.get("signature"), "headline": m.get("headline"),
                       "key": m.get("key"), "suspect_deploy": inc.get("suspect_deploy")})
    return alerts


def score_culprit(alerts, truth, eval_start, eval_end):
    """score() for culprit, the window closed at eval_end (the last tick);
    the delays on the truth service count detections only."""
    onset = parse_time(truth["onset"]) if truth.get("onset") else None
    if truth["shape"] == "quiet" or onset is None:
        return score(alerts, truth, eval_start, eval_end + timedelta(seconds=1))
    times = sorted(a["time"] for a in alerts if eval_start <= a["time"] <= eval_end)
    after = sorted(((a["time"], a["service"]) for a in alerts if onset <= a["time"] <= eval_end))
    hits = sorted(a["time"] for a in alerts if a["truth"] and eval_start <= a["time"] <= eval_end)
    delay = round((hits[0] - onset).total_seconds() / 60, 1) if hits else None
    return {
        "false": len([t for t in times if t < onset]),
        "after": len(after),
        "after_not_truth": len(after) - len(hits),
        "delay_min": round((after[0][0] - onset).total_seconds() / 60, 1) if after else None,
        "first_service": after[0][1] if after else None,
        "delay_service_min": delay,
        "delay_message_min": delay,
    }


def load_runs(runs_dir):
    runs = []
    for name in sorted(os.listdir(runs_dir)):
        p = os.path.join(runs_dir, name, "truth.json")
        if os.path.exists(p):
            with open(p) as f:
                runs.append((name, json.load(f)))
    if not runs:
        raise RuntimeError("no run with a truth.json under %s" % runs_dir)
    return runs


def fmt_delay(v):
    return "–" if v is None else "%g" % v


def markdown(results, detectors):
    lines = []
    lines.append("Per run: false alerts before the onset (whole run when quiet) / delay in minutes "
                 "of the first alert at or after the onset on any service / on the truth service "
                 "(– = none).")
    lines.append("")
    lines.append("| run | onset (truth service) | " + " | ".join(detectors) + " |")
    lines.append("| --- | --- | " + " | ".join("---" for _ in detectors) + " |")
    for r in results:
        t = r["truth"]
        head = "quiet" if t["shape"] == "quiet" else "%s (%s)" % (t["onset"][11:16], t.get("service", ""))
        cells = []
        for d in detectors:
            s = r["scores"][d]
            if t["shape"] == "quiet":
                cells.append("%d / – / –" % s["false"])
            else:
                cells.append("%d / %s / %s" % (s["false"], fmt_delay(s["delay_min"]), fmt_delay(s["delay_service_min"])))
        lines.append("| %s | %s | %s |" % (r["run"], head, " | ".join(cells)))
    lines.append("")
    lines.append("Summary over the incident runs (the quiet run counted separately):")
    lines.append("")
    lines.append("| detector | incidents caught on truth service | median delay, truth service (min) | "
                 "false alerts before onset (incident runs) | false alerts, quiet run(s) | "
                 "evaluated pre-onset hours | replay time (s) |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- |")
    for d in detectors:
        inc = [r for r in results if r["truth"]["shape"] != "quiet"]
        quiet = [r for r in results if r["truth"]["shape"] == "quiet"]
        caught = [r["scores"][d]["delay_service_min"] for r in inc if r["scores"][d]["delay_service_min"] is not None]
        med = statistics.median(caught) if caught else None
        false_inc = sum(r["scores"][d]["false"] for r in inc)
        false_quiet = sum(r["scores"][d]["false"] for r in quiet)
        hours = sum(r["preonset_hours"][d] for r in inc)
        secs = sum(r["seconds"].get(d, 0) for r in results)
        lines.append("| %s | %d/%d | %s | %d | %d | %.0f | %s |" % (
            d, len(caught), len(inc), fmt_delay(med), false_inc, false_quiet, hours,
            "%.1f" % secs if any(d in r["seconds"] for r in results) else "–"))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", required=True)
    ap.add_argument("--es", default="http://127.0.0.1:9200")
    ap.add_argument("--index-prefix", default="bench-ea-")
    ap.add_argument("--config", default=os.path.join(HERE, "elastalert", "config.yaml"))
    ap.add_argument("--rules", default=os.path.join(HERE, "elastalert", "rules"))
    ap.add_argument("--learn", type=parse_duration, default=timedelta(hours=2))
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--out", default="elastalert-results.json")
    ap.add_argument("--work", help="directory for the rendered rules and elastalert logs (default: a new temporary one)")
    ap.add_argument("--culprit", help="culprit binary: also score `culprit backtest --es` on each run (first row)")
    ap.add_argument("--culprit-config", default=os.path.join(HERE, "elastalert", "culprit.yml"),
                    help="culprit's configuration for the backtest (default: the defaults plus a route that pages everything)")
    args = ap.parse_args()

    config = os.path.abspath(args.config)
    templates = sorted(f for f in os.listdir(args.rules) if f.endswith(".yaml"))
    rule_names = ["ea_" + f[:-5] for f in templates]
    detectors = rule_names + ["threshold_1pct", "threshold_2pct", "threshold_svc_1pct", "threshold_svc_2pct"]
    if args.culprit:
        detectors.insert(0, "culprit")
    culprit_meta = None
    if args.work:
        os.makedirs(args.work, exist_ok=True)
        # Absolute: elastalert runs in the config's directory.
        work = os.path.abspath(args.work)
    else:
        work = tempfile.mkdtemp(prefix="ea-bench-")
    results = []
    for name, truth in load_runs(args.runs):
        index = "%s%s-*" % (args.index_prefix, name)
        start, end, docs = run_range(args.es, index)
        learn_end = start + args.learn
        onset = parse_time(truth["onset"]) if truth.get("onset") else end
        alerts, seconds, eval_start = {}, {}, {}
        scores = {}
        if args.culprit:
            report, secs = run_culprit(args.culprit, os.path.abspath(args.culprit_config), args.es, index,
                                       os.path.join(args.runs, name), learn_end, end,
                                       os.path.join(work, "%s-culprit.json" % name),
                                       os.path.join(work, "%s-culprit.log" % name))
            meta = {"interval_seconds": report["interval_seconds"], "lag_seconds": report["lag_seconds"]}
            if culprit_meta is None:
                culprit_meta = dict(meta, config=os.path.abspath(args.culprit_config))
            elif {k: culprit_meta[k] for k in meta} != meta:
                raise RuntimeError("culprit's tick or lag changed between runs: %s, then %s" % (culprit_meta, meta))
            alerts["culprit"] = culprit_alerts(report, truth)
            seconds["culprit"] = round(secs, 2)
            eval_start["culprit"] = parse_time(report["from"])
            scores["culprit"] = score_culprit(alerts["culprit"], truth, eval_start["culprit"], parse_time(report["to"]))
            scores["culprit"]["ticks"] = report["ticks"]
        for tpl, rn in zip(templates, rule_names):
            is_new_term = "new_term" in tpl
            rs = learn_end if is_new_term else start
            rule_file = os.path.join(work, "%s-%s" % (name, tpl))
            render_rule(os.path.join(args.rules, tpl), index, learn_end, rule_file)
            res = run_rule(args.python, config, rule_file, rs, end,
                           os.path.join(work, "%s-%s.json" % (name, rn)),
                           os.path.join(work, "%s-%s.log" % (name, rn)))
            alerts[rn] = [{"time": parse_time(m["time"]), "service": m["service"],
                           "status": m["status"], "error_message": m["error_message"]} for m in res["matches"]]
            seconds[rn] = round(res["seconds"], 2)
            eval_start[rn] = rs
        t0 = time.perf_counter()
        minutes = per_minute_5xx(args.es, index, start, end)
        seconds["threshold"] = round(time.perf_counter() - t0, 2)
        for th in THRESHOLDS:
            fleet, svc = threshold_alerts(minutes, th)
            pct = "%dpct" % round(th * 100)
            alerts["threshold_" + pct] = fleet
            alerts["threshold_svc_" + pct] = svc
            eval_start["threshold_" + pct] = start
            eval_start["threshold_svc_" + pct] = start
        scores.update({d: score(alerts[d], truth, eval_start[d], end) for d in detectors if d not in scores})
        fleet_share = [err / tot for _, tot, err, _ in minutes if tot]
        results.append({
            "run": name, "index": index, "docs": docs, "start": fmt_time(start), "end": fmt_time(end),
            "truth": truth, "scores": scores, "seconds": seconds,
            "preonset_hours": {d: max(0.0, (min(onset, end) - eval_start[d]).total_seconds() / 3600) for d in detectors},
            "max_fleet_5xx_share": round(max(fleet_share), 5) if fleet_share else None,
            "alerts": {d: [{**a, "time": fmt_time(a["time"])} for a in alerts[d]] for d in detectors},
        })
        print("scored %s (%d docs)" % (name, docs), file=sys.stderr)
    with open(args.out, "w") as f:
        json.dump({"detectors": detectors, "learn_minutes": args.learn.total_seconds() / 60,
                   "culprit": culprit_meta, "work_dir": work, "runs": results}, f, indent=1)
    print(markdown(results, detectors))
    if culprit_meta:
        print("")
        print("culprit: `culprit backtest --es` on the same indices from the end of the learning window "
              "(the %g min before it are its history), a tick every %g s, ingestion lag %g s (its config's "
              "sources.elasticsearch.lag), every finding graded page routed to PagerDuty. A detection is a "
              "trigger for the truth service at or after the onset whose incident carries the truth's message; "
              "its delay is tick minus onset." % (
                  args.learn.total_seconds() / 60, culprit_meta["interval_seconds"], culprit_meta["lag_seconds"]))
    print("")
    print("Highest fleet-wide per-minute 5xx share per run: " + ", ".join(
        "%s %.2f%%" % (r["run"], 100 * r["max_fleet_5xx_share"]) for r in results))


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        print("elastalert_bench: %s" % e, file=sys.stderr)
        sys.exit(1)
