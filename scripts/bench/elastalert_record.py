"""Run one ElastAlert2 rule over a past time range and record its alerts.

Usage: elastalert_record.py OUT.json -- <elastalert-test-rule arguments>

This is elastalert-test-rule (elastalert.test_rule, shipped with
elastalert2) with one hook: every match the rule hands to ElastAlerter.alert
is recorded, with its event timestamp, query key value and error fields,
and written to OUT.json as {"matches": [...], "errors": [...],
"seconds": wall time}. The stock tool prints matches as Python reprs in its
log and keeps only the last writeback document in --formatted-output, which
cannot be scored; alerts themselves are not sent (debug mode), exactly as
with the stock tool.

Two stock behaviours matter for the numbers and are left as they are:
  * a match's time is the @timestamp of the document that completed it; a
    running elastalert would alert at its next run_every tick (1 minute
    here) after that document is searchable;
  * the rule's realert silence cache runs on the wall clock, so the rules
    set realert to 0 to see every match of a run replayed in seconds.
"""

import json
import sys
import time
from datetime import datetime

from elastalert import test_rule
from elastalert.elastalert import ElastAlerter
from elastalert.util import lookup_es_key


def _jsonable(v):
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


def main(argv):
    if len(argv) < 3 or argv[1] != "--":
        print("usage: elastalert_record.py OUT.json -- <elastalert-test-rule args>", file=sys.stderr)
        return 2
    out, args = argv[0], argv[2:]
    matches, errors = [], []
    orig_alert = ElastAlerter.alert
    orig_handle = ElastAlerter.handle_error

    def alert(self, ms, rule, alert_time=None, retried=False):
        for m in ms:
            ts = lookup_es_key(m, rule.get("timestamp_field", "@timestamp"))
            matches.append({
                "time": _jsonable(ts),
                "service": _jsonable(lookup_es_key(m, "service.name")),
                "status": _jsonable(lookup_es_key(m, "http.response.status_code")),
                "error_message": _jsonable(lookup_es_key(m, "error.message")),
                "new_field": _jsonable(m.get("new_field")),
                "spike_count": _jsonable(m.get("spike_count")),
                "reference_count": _jsonable(m.get("reference_count")),
            })
        return orig_alert(self, ms, rule, alert_time=alert_time, retried=retried)

    def handle_error(self, message, data=None):
        # ElastAlerter reports query failures here and carries on; a
        # benchmark that silently scored a failed query as "no alert"
        # would be wrong, so failures are kept and fail the run.
        errors.append(str(message))
        return orig_handle(self, message, data)

    ElastAlerter.alert = alert
    ElastAlerter.handle_error = handle_error
    t0 = time.perf_counter()
    try:
        test_rule.main(args)
    except SystemExit as e:
        if e.code not in (None, 0):
            errors.append("elastalert-test-rule exited with %s" % e.code)
    seconds = time.perf_counter() - t0
    with open(out, "w") as f:
        json.dump({"matches": matches, "errors": errors, "seconds": seconds}, f, indent=1)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
