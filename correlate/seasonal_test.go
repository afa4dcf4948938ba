package correlate

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/culprithq/culprit/rules"
)

// seasonalWeeks is a quiet fortnight, but for one incident, whose traffic
// and background errors follow the day and the week: the corpus extension
// of issue 17's seasonal baselines, small enough to evaluate in seconds.
//
//   - requests follow the day (peak 15:00, a tenth of it at night), and
//     the weekend has 60% of a weekday's traffic, Friday evening 130%;
//   - "batch export timed out" is a nightly job's: its rate per request is
//     20 times higher from 02:00 to 02:40 every day;
//   - "request blocked by WAF rule" follows the week: scanners quadruple it
//     on Saturday and Sunday from 10:00 to 18:00;
//   - "upstream connect error" bursts at random, a few times a day;
//   - "payment provider unavailable" is the incident: ten times its rate
//     for 40 minutes, once.
type seasonalWeeks struct {
	tr       *Traffic
	incident time.Time
	incMsg   string
}

func newSeasonalWeeks(days int, seed uint64) seasonalWeeks {
	r := rand.New(rand.NewPCG(seed, seed))
	// A Wednesday, so that the evaluated days take in a weekend.
	start := time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC)
	n := days * 24 * 60
	w, _ := NewWindow(start, start.Add(time.Duration(n)*time.Minute), time.Minute)
	incident := start.Add(time.Duration(days-2)*24*time.Hour + 14*time.Hour)
	st := ServiceTraffic{Service: "api", Requests: make([]float64, n), Errors: make([]float64, n)}
	type class struct {
		msg  string
		rate func(t time.Time, i int) float64
	}
	burstUntil := -1
	classes := []class{
		{"batch export timed out", func(t time.Time, _ int) float64 {
			if t.Hour() == 2 && t.Minute() < 40 {
				return 0.01
			}
			return 0.0005
		}},
		{"request blocked by WAF rule", func(t time.Time, _ int) float64 {
			if wd := t.Weekday(); (wd == time.Saturday || wd == time.Sunday) && t.Hour() >= 10 && t.Hour() < 18 {
				return 0.004
			}
			return 0.001
		}},
		{"upstream connect error", func(_ time.Time, i int) float64 {
			if i > burstUntil && r.Float64() < 3.0/1440 {
				burstUntil = i + 3 + r.IntN(10)
			}
			if i <= burstUntil {
				return 0.003
			}
			return 0.0003
		}},
		{"payment provider unavailable", func(t time.Time, _ int) float64 {
			if !t.Before(incident) && t.Before(incident.Add(40*time.Minute)) {
				return 0.003
			}
			return 0.0003
		}},
	}
	counts := make([][]float64, len(classes))
	for k := range counts {
		counts[k] = make([]float64, n)
	}
	for i := range n {
		t := w.Start(i)
		h := float64(t.Hour()) + float64(t.Minute())/60
		level := 0.1 + 0.9*math.Pow(math.Max(0, math.Cos((h-15)*math.Pi/12)), 2)
		switch wd := t.Weekday(); {
		case wd == time.Saturday || wd == time.Sunday:
			level *= 0.6
		case wd == time.Friday && t.Hour() >= 17:
			level *= 1.3
		}
		st.Requests[i] = poisson(r, 3000*level)
		for k, c := range classes {
			counts[k][i] = poisson(r, c.rate(t, i)*st.Requests[i])
			st.Errors[i] += counts[k][i]
		}
	}
	for k, c := range classes {
		st.Messages = append(st.Messages, MessageCounts{Message: c.msg, Counts: NewCounts(counts[k]), Examples: []string{c.msg}})
	}
	return seasonalWeeks{tr: &Traffic{Window: w, Services: []ServiceTraffic{st}}, incident: incident, incMsg: "payment provider unavailable"}
}

// slicedSource serves the part of a longer traffic that a window asks for,
// as a daemon's source would at each evaluation.
type slicedSource struct{ tr *Traffic }

func (s slicedSource) Traffic(_ context.Context, w Window) (*Traffic, error) {
	a, b := s.tr.Window.Index(w.From), s.tr.Window.Index(w.To.Add(-w.Step))+1
	if a < 0 || b <= 0 {
		return nil, fmt.Errorf("window %s–%s outside the traffic", w.From, w.To)
	}
	out := &Traffic{Window: w}
	for _, st := range s.tr.Services {
		o := ServiceTraffic{Service: st.Service, Requests: st.Requests[a:b], Errors: st.Errors[a:b]}
		for _, m := range st.Messages {
			c := make([]float64, b-a)
			m.Counts.AddTo(c, a)
			o.Messages = append(o.Messages, MessageCounts{Message: m.Message, Counts: NewCounts(c), Examples: m.Examples})
		}
		out.Services = append(out.Services, o)
	}
	return out, nil
}

func (slicedSource) Scope(context.Context, ScopeQuery) (*Scope, error) { return &Scope{}, nil }

// seasonalOutcome is what one configuration made of the evaluated days.
type seasonalOutcome struct {
	falseEpisodes map[string]int // per signature: episodes found that are not the incident
	days          float64
	found         bool          // the incident was found
	delay         time.Duration // from its onset to the first evaluation that found it
}

func (o seasonalOutcome) perWeek() float64 {
	total := 0
	for _, n := range o.falseEpisodes {
		total += n
	}
	return float64(total) * 7 / o.days
}

// evaluateSeasonal evaluates the last days of the fortnight every tick, as
// the daemon would with a lookback, and counts distinct episodes: a
// finding of a signature within two hours of its previous one is the same
// episode seen again.
func evaluateSeasonal(t testing.TB, sw seasonalWeeks, cfg rules.Correlate, lookback, tick time.Duration, days int) seasonalOutcome {
	src := slicedSource{sw.tr}
	end := sw.tr.Window.To
	out := seasonalOutcome{falseEpisodes: map[string]int{}, days: float64(days)}
	last := map[string]time.Time{}
	for now := end.Add(-time.Duration(days) * 24 * time.Hour); !now.After(end); now = now.Add(tick) {
		w, err := NewWindow(now.Add(-lookback), now, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Run(context.Background(), src, Input{Window: w, Now: now, MinBaseline: 2 * time.Hour}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range res.Findings {
			if f.Signature == sw.incMsg && !f.Onset.Before(sw.incident.Add(-10*time.Minute)) && f.Onset.Before(sw.incident.Add(40*time.Minute)) {
				if !out.found {
					out.found, out.delay = true, now.Sub(sw.incident)
				}
				continue
			}
			if p, ok := last[f.Signature]; !ok || f.Onset.Sub(p) > 2*time.Hour {
				out.falseEpisodes[f.Signature]++
				last[f.Signature] = f.Onset
			}
		}
	}
	return out
}

// TestSeasonalBaselines counts false episodes per week over a quiet week
// with daily and weekly patterns, with and without seasonality, and checks
// that seasonality removes the classes that follow the day or the week
// without losing the incident. Its log is BENCHMARKS.md's seasonal table:
//
//	go test -count=1 -run TestSeasonalBaselines -v ./correlate/
func TestSeasonalBaselines(t *testing.T) {
	if testing.Short() {
		t.Skip("evaluates a week at 20-minute ticks (about 5 s of CPU)")
	}
	const days, evalDays = 17, 7
	sw := newSeasonalWeeks(days, 11)
	lookback := 9*24*time.Hour + time.Hour // a week and the detection span back
	tick := 20 * time.Minute
	configs := []struct {
		name        string
		seasonality string
		periods     int
	}{
		{"off", rules.SeasonalityOff, 0},
		{"daily, 3 days", rules.SeasonalityDaily, 3},
		{"weekly, 1 week", rules.SeasonalityWeekly, 1},
	}
	got := map[string]seasonalOutcome{}
	for _, c := range configs {
		cfg := rules.Default().Correlate
		cfg.Seasonality, cfg.SeasonalPeriods = c.seasonality, c.periods
		o := evaluateSeasonal(t, sw, cfg, lookback, tick, evalDays)
		got[c.name] = o
		t.Logf("seasonal: %-15s false episodes per week %5.1f (batch %d, WAF %d, upstream %d); incident found %v after %s",
			c.name, o.perWeek(), o.falseEpisodes["batch export timed out"], o.falseEpisodes["request blocked by WAF rule"],
			o.falseEpisodes["upstream connect error"], o.found, o.delay)
	}
	off, daily, weekly := got["off"], got["daily, 3 days"], got["weekly, 1 week"]
	for name, o := range got {
		if !o.found {
			t.Errorf("%s: the incident was not found", name)
		}
	}
	if off.falseEpisodes["batch export timed out"] < evalDays/2 {
		t.Errorf("without seasonality the nightly batch made %d episodes in %d days: the corpus no longer tests seasonality",
			off.falseEpisodes["batch export timed out"], evalDays)
	}
	if daily.falseEpisodes["batch export timed out"] > 1 {
		t.Errorf("daily seasonality still found the nightly batch %d times", daily.falseEpisodes["batch export timed out"])
	}
	if weekly.perWeek() >= off.perWeek() || daily.perWeek() >= off.perWeek() {
		t.Errorf("false episodes per week: off %.1f, daily %.1f, weekly %.1f: seasonality removed none", off.perWeek(), daily.perWeek(), weekly.perWeek())
	}
}
