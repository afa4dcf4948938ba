package correlate

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/rules"
)

var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// fleet builds a Scope for 10 hosts over 360 one-minute buckets where hosts
// h0..h9 each serve 100 requests a minute and errors are placed by errAt.
func fleet(w Window, errAt func(host, bucket int) float64, version func(host, bucket int) string) *Scope {
	sc := &Scope{
		Errors:       map[string]map[string]float64{},
		Requests:     map[string]map[string]float64{},
		HostErrors:   map[string][]float64{},
		HostRequests: map[string][]float64{},
	}
	add := func(m map[string]map[string]float64, f, v string, n float64) {
		if m[f] == nil {
			m[f] = map[string]float64{}
		}
		m[f][v] += n
	}
	for h := range 10 {
		name := fmt.Sprintf("h%d", h)
		sc.HostErrors[name] = make([]float64, w.Len())
		sc.HostRequests[name] = make([]float64, w.Len())
		for i := range w.Len() {
			e := errAt(h, i)
			sc.HostErrors[name][i] = e
			sc.HostRequests[name][i] = 100
			if i >= 240 {
				v := version(h, i)
				add(sc.Requests, FieldVersion, v, 100)
				add(sc.Requests, FieldHost, name, 100)
				if e > 0 {
					add(sc.Errors, FieldVersion, v, e)
					add(sc.Errors, FieldHost, name, e)
				}
			}
		}
	}
	return sc
}

// seriesOf sums a fleet's host series into the finding's own series.
func seriesOf(w Window, sc *Scope) *FindingChart {
	c := &FindingChart{Start: w.From, StepSec: w.Step.Seconds(), Errors: make([]float64, w.Len()), Requests: make([]float64, w.Len())}
	for h, reqs := range sc.HostRequests {
		for i := range reqs {
			c.Requests[i] += reqs[i]
			c.Errors[i] += sc.HostErrors[h][i]
		}
	}
	return c
}

func TestAttribute(t *testing.T) {
	w, _ := NewWindow(t0, t0.Add(6*time.Hour), time.Minute)
	onset := w.Start(240)
	// Rollout: host h gets the version at minute 240+2h.
	rollout := func(svc, ver string, start int, hosts int) Deploy {
		d := Deploy{ID: "dep-" + ver, Service: svc, Version: ver, StartedAt: w.Start(start), FinishedAt: w.Start(start + 2*hosts)}
		for h := range hosts {
			d.Hosts = append(d.Hosts, HostRollout{Name: fmt.Sprintf("h%d", h), At: w.Start(start + 2*h)})
		}
		return d
	}
	updated := func(start int) func(h, i int) bool { return func(h, i int) bool { return i >= start+2*h } }
	// onRollout: hosts run v once updated says so, v1 before.
	onRollout := func(v string, updated func(h, i int) bool) func(h, i int) string {
		return func(h, i int) string {
			if updated(h, i) {
				return v
			}
			return "v1"
		}
	}
	cfg := rules.Default().Correlate

	type attrCase struct {
		name    string
		deploys []Deploy
		errAt   func(h, i int) float64
		version func(h, i int) string
		want    []string // suspect ids in order
		// latest is the segmentation's onset bucket when the CUSUM dated
		// the onset (bucket 240) earlier; 0 for none.
		latest int
		kind   Kind
		// untied: the first suspect is tied by its recovery alone, so
		// its rollout must not date the onset.
		untied bool
		// oneLine: the first suspect rests on one moderate line, which
		// does not lift the hold on an increase (see corroborated).
		oneLine bool
		// onset is the onset's bucket when not 240.
		onset int
	}
	tests := []attrCase{
		{
			name:    "errors follow the rollout host by host",
			deploys: []Deploy{rollout("edge", "v2", 240, 10), rollout("api", "v9", 230, 0)},
			errAt: func(h, i int) float64 {
				if updated(240)(h, i) {
					return 2
				}
				return 0
			},
			version: onRollout("v2", updated(240)),
			want:    []string{"dep-v2"},
		},
		{
			name:    "errors on hosts the deploy has not reached: not the deploy",
			deploys: []Deploy{rollout("edge", "v2", 235, 5)},
			errAt: func(h, i int) float64 {
				if h >= 5 && i >= 240 {
					return 2
				}
				return 0
			},
			version: func(h, i int) string { return map[bool]string{true: "v2", false: "v1"}[h < 5 && updated(235)(h, i)] },
			want:    nil,
		},
		{
			name: "nearest deploy finished before the onset, errors everywhere: timing alone blames nobody",
			deploys: []Deploy{func() Deploy {
				d := rollout("edge", "v2", 200, 10)
				return d
			}()},
			errAt: func(h, i int) float64 {
				if i >= 240 {
					return 1
				}
				return 0
			},
			version: func(h, i int) string { return "v2" },
			want:    nil,
		},
		{
			name:    "deploy after the onset cannot be the cause",
			deploys: []Deploy{rollout("edge", "v3", 260, 10)},
			errAt: func(h, i int) float64 {
				if i >= 240 {
					return 1
				}
				return 0
			},
			version: onRollout("v3", updated(260)),
			want:    nil,
		},
		{
			name:    "canary: one host got the version and only it fails",
			deploys: []Deploy{rollout("edge", "v2-canary", 239, 1)},
			errAt: func(h, i int) float64 {
				if h == 0 && i >= 239 {
					return 3
				}
				return 0
			},
			version: func(h, i int) string { return map[bool]string{true: "v2-canary", false: "v1"}[h == 0 && i >= 239] },
			want:    []string{"dep-v2-canary"},
		},
	}
	for _, at := range []int{0, 262} {
		// A bursty class's CUSUM dated the onset at 240, segmentation at
		// 262; the deploy at 260 is examined only when latest says so.
		name := "deploy after an onset dated early by a background burst"
		want := []string(nil)
		if at > 0 {
			name += ", within the segmentation's dating"
			want = []string{"dep-v4"}
		}
		tests = append(tests, attrCase{name, []Deploy{rollout("edge", "v4", 260, 10)}, func(h, i int) float64 {
			switch {
			case updated(260)(h, i):
				return 3
			case i >= 240 && i < 245:
				return 1 // the burst the CUSUM dated the onset from
			}
			return 0
		}, onRollout("v4", updated(260)), want, at, "", false, false, 0})
	}
	for _, kind := range []Kind{KindNewError, KindErrorIncrease} {
		// A rollout over 200..218 that finished before an increase at
		// 240; during the rollout the class's background errors happened
		// to fall on updated hosts. Only a class without background can
		// be judged on the rollout's minutes before its onset.
		name := "background errors on updated hosts before the onset, " + string(kind)
		want := []string{"dep-v5"}
		if kind == KindErrorIncrease {
			want = nil
		}
		tests = append(tests, attrCase{name: name, deploys: []Deploy{rollout("edge", "v5", 200, 10)}, errAt: func(h, i int) float64 {
			switch {
			case i >= 240:
				return 2
			case i >= 200 && i < 220 && updated(200)(h, i):
				return 1
			}
			return 0
		}, version: func(h, i int) string { return "v5" }, want: want, kind: kind})
	}
	// A 3-minute rollout: every host has v2 within 3 buckets of 240.
	short := func(svc, ver string, start int, prefix string) Deploy {
		d := Deploy{ID: "dep-" + ver, Service: svc, Version: ver, StartedAt: w.Start(start), FinishedAt: w.Start(start + 3)}
		for h := range 10 {
			d.Hosts = append(d.Hosts, HostRollout{Name: fmt.Sprintf("%s%d", prefix, h), At: w.Start(start).Add(time.Duration(h) * 18 * time.Second)})
		}
		return d
	}
	shortUpdated := func(start int) func(h, i int) bool {
		return func(h, i int) bool { return !w.Start(start).Add(time.Duration(h) * 18 * time.Second).After(w.Start(i)) }
	}
	// background is an existing class: one error per host every ten
	// minutes, staggered across hosts.
	background := func(h, i int) float64 {
		if (i+h)%10 == 0 {
			return 1
		}
		return 0
	}
	always := func(v string) func(h, i int) string { return func(h, i int) string { return v } }
	tests = append(tests,
		attrCase{
			name:    "short rollout, existing class 10x on the new version only: version rate against the predecessor's own rate",
			deploys: []Deploy{short("edge", "v2", 240, "h")},
			errAt: func(h, i int) float64 {
				if shortUpdated(240)(h, i) {
					return 1
				}
				return background(h, i)
			},
			version: always("v2"),
			want:    []string{"dep-v2"},
			kind:    KindErrorIncrease,
		},
		attrCase{
			// A class bursting on every host from the rollout's first
			// minute: the side-by-side comparison over the 20-minute
			// rollout finds the updated hosts barely worse (p > 0.05),
			// and only the comparison with the hour before implicates v2.
			name:    "burst from a long rollout's first minute: version rate alone, side by side found nothing",
			deploys: []Deploy{rollout("edge", "v2", 240, 10)},
			errAt: func(h, i int) float64 {
				switch {
				case i >= 240 && updated(240)(h, i):
					return 1.3
				case i >= 240:
					return 1
				}
				return background(h, i)
			},
			version: onRollout("v2", updated(240)),
			want:    []string{"dep-v2"},
			kind:    KindErrorIncrease,
			oneLine: true,
		},
		attrCase{
			// One customer's burst on every host, dating the onset 10
			// minutes before the rollout and lasting into it: over the
			// span, the old version carries more than its share of the
			// errors, but minute by minute the updated hosts fail more.
			name:    "a burst before the rollout does not veto what the rollout's minutes show",
			deploys: []Deploy{rollout("edge", "v2", 240, 10)},
			errAt: func(h, i int) float64 {
				e := background(h, i)
				if i >= 230 && i < 250 {
					e += 6
				}
				if updated(240)(h, i) {
					e += 3
				}
				return e
			},
			version: onRollout("v2", updated(240)),
			want:    []string{"dep-v2"},
			kind:    KindErrorIncrease,
			onset:   230,
			// The burst's minutes inside the rollout keep the alignment
			// moderate; the version's rate over its first half hour on
			// every host (versionRateSpan) is 2× the predecessor's even
			// with the burst in the predecessor's hour: two lines.
		},
		attrCase{
			// The corpus's quiet day 23: the class runs at its background
			// rate on the new version for an hour, then one burst. Dated
			// from the rollout (the search merged the two), the version's
			// rate over everything since the rollout is the burst's, and
			// would blame a version that ran clean for an hour.
			name:    "a burst an hour after a quick rollout is not the version's rate",
			deploys: []Deploy{short("edge", "v2", 240, "h")},
			errAt: func(h, i int) float64 {
				if i >= 300 && i < 330 {
					return 4
				}
				return background(h, i)
			},
			version: always("v2"),
			want:    nil,
			kind:    KindErrorIncrease,
		},
		attrCase{
			name:    "outage that starts 20 min after a short rollout finished does not look aligned",
			deploys: []Deploy{short("edge", "v2", 220, "h")},
			errAt: func(h, i int) float64 {
				if i >= 240 {
					return 1
				}
				return background(h, i)
			},
			version: always("v2"),
			want:    nil,
			kind:    KindErrorIncrease,
		},
		attrCase{
			// Every host ran v2 from 233 to 236, and the class did not
			// change: a burst that begins at 240, 4 minutes after the last
			// host and 7 after the first, is not the version's, though
			// it is within rolloutTail of the rollout's end.
			name:    "burst 4 min after a 3-min rollout finished is not the version's",
			deploys: []Deploy{short("edge", "v2", 233, "h")},
			errAt: func(h, i int) float64 {
				if i >= 240 {
					return 1
				}
				return background(h, i)
			},
			version: onRollout("v2", shortUpdated(233)),
			want:    nil,
			kind:    KindErrorIncrease,
		},
		attrCase{
			name:    "decoy deploy of another service 3 min before the onset is not blamed",
			deploys: []Deploy{short("api", "v7", 237, "a")},
			errAt: func(h, i int) float64 {
				if i >= 240 {
					return 1
				}
				return background(h, i)
			},
			version: always("v1"),
			want:    nil,
			kind:    KindErrorIncrease,
		},
		attrCase{
			name: "leak after the rollout ended stops host by host as the replacement lands",
			deploys: []Deploy{short("edge", "v2", 200, "h"), func() Deploy {
				d := rollout("edge", "v3", 280, 10)
				d.Description = "Roll back v2"
				return d
			}()},
			errAt: func(h, i int) float64 {
				if i >= 240 && !updated(280)(h, i) {
					return 2
				}
				return 0
			},
			version: always("v2"),
			want:    []string{"dep-v2"},
			kind:    KindNewError,
			untied:  true,
		},
	)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := fleet(w, tc.errAt, tc.version)
			f := Finding{Service: "edge", Onset: onset, Kind: tc.kind, Series: seriesOf(w, sc)}
			if tc.onset > 0 {
				f.Onset = w.Start(tc.onset)
			}
			latest := f.Onset
			if tc.latest > 0 {
				latest = w.Start(tc.latest)
			}
			got := attribute(f, latest, sc, tc.deploys, w, w.Len(), cfg)
			var ids []string
			for _, s := range got {
				ids = append(ids, s.ID)
				if s.Score <= 0 || s.Score > 1 {
					t.Errorf("%s: score %v outside (0,1]", s.ID, s.Score)
				}
				if len(s.Reasons) == 0 {
					t.Errorf("%s: no reasons", s.ID)
				}
			}
			if len(got) > 0 && got[0].rolloutTied == tc.untied {
				t.Errorf("%s: rolloutTied = %t, want %t", got[0].ID, got[0].rolloutTied, !tc.untied)
			}
			if len(got) > 0 && got[0].corroborated == tc.oneLine {
				t.Errorf("%s: corroborated = %t, want %t; reasons %q", got[0].ID, got[0].corroborated, !tc.oneLine, got[0].Reasons)
			}
			if strings.Join(ids, ",") != strings.Join(tc.want, ",") {
				t.Errorf("suspects = %v, want %v; details %+v", ids, tc.want, got)
			}
		})
	}
}

func TestSummarizeScope(t *testing.T) {
	sc := &Scope{
		Errors: map[string]map[string]float64{
			FieldProvider: {"aws": 100},
			FieldCustomer: {"1": 30, "2": 30, "3": 40},
			FieldRegion:   {"us-east-1": 60, "eu-west-1": 40},
		},
		Requests: map[string]map[string]float64{
			FieldProvider: {"aws": 410, "gcp": 300, "azure": 290},
			FieldCustomer: {"1": 100, "2": 100, "3": 100, "4": 700},
			FieldRegion:   {"us-east-1": 200, "eu-west-1": 210, "us-central1": 590},
		},
	}
	s := summarizeScope(sc)
	if s.Affected[FieldCustomer] != 3 {
		t.Errorf("affected customers = %d, want 3", s.Affected[FieldCustomer])
	}
	if len(s.Concentration) == 0 || s.Concentration[0].Field != FieldProvider || s.Concentration[0].Value != "aws" {
		t.Fatalf("strongest concentration = %+v, want cloud.provider=aws first", s.Concentration)
	}
	if c := s.Concentration[0]; c.ShareOfErrors != 1 || c.ShareOfRequests != 0.41 {
		t.Errorf("aws shares = %v/%v, want 1/0.41", c.ShareOfErrors, c.ShareOfRequests)
	}
	for _, c := range s.Concentration {
		if c.Field == FieldCustomer && c.Value == "4" {
			t.Error("a customer with no errors is reported as concentrating them")
		}
	}
	want := []ValueCount{{"3", 40}, {"1", 30}, {"2", 30}}
	if got := s.Top[FieldCustomer]; !reflect.DeepEqual(got, want) {
		t.Errorf("top customers %v, want %v (most errors first, ties by id, none without errors)", got, want)
	}
}

func TestArticle(t *testing.T) {
	for num, want := range map[string]string{"2": "a", "8": "an", "11": "an", "18": "an", "80": "an", "100": "a", "7": "a", "11000": "an", "180000": "a", "1100": "a", "18000": "an"} {
		if got := article(num); got != want {
			t.Errorf("article(%s) = %s, want %s", num, got, want)
		}
	}
}
