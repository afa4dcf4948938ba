package correlate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/culprithq/culprit/correlate/template"
	"github.com/culprithq/culprit/rules"
)

// Input is everything a run needs besides the log source.
type Input struct {
	Window  Window
	Deploys []Deploy
	Tickets []Ticket
	// Now is when the run happens: the detection time of every finding.
	// Zero means the window's end.
	Now time.Time
	// MinBaseline is the least history an onset needs in front of it, over
	// the 30 buckets every run asks. A daemon that judges a sliding window
	// again every minute needs it: sparse classes (a deadlock a few times
	// an hour, WAF blocks that follow the day) show almost nothing in half
	// an hour of night, so a class that never paged while its onset was
	// recent read as new, or as a multi-fold increase, hours later, just
	// before its onset left the window. A question asked once about a
	// chosen span needs no more than the 30 buckets.
	MinBaseline time.Duration
	// Customers names affected customers and gives their tiers; nil
	// leaves them ids.
	Customers Directory
	// Priority computes each finding's P1–P4; nil uses
	// rules.DefaultPriority.
	Priority *rules.Priority
}

// priority is the policy in effect for in.
func (in Input) priority() rules.Priority {
	if in.Priority != nil {
		return *in.Priority
	}
	return rules.DefaultPriority()
}

// Method names the statistical procedure, so every p-value in a report says
// how it was obtained.
const Method = "negative-binomial excess over baseline (block dispersion, Bonferroni over onsets), Benjamini-Hochberg across series"

// TicketMethod is the procedure behind ticket surges, a family of their own.
const TicketMethod = "negative-binomial excess of ticket volume over baseline (Bonferroni over onsets); its own family, never pages"

// candidate is one tested series, significant or not.
type candidate struct {
	service   string
	signature string
	members   []string
	examples  []string
	// all is the signature's errors over the whole window; counts and
	// requests are the span searched for onsets (see history), counts
	// only kept for the series that show an episode.
	all      Counts
	hist     history
	counts   []float64
	requests []float64
	ep       episode
	blocks   []blockRate // the newest blocks, for the hold on deploy-less increases
	ok       bool
	kind     Kind
	tickets  []Ticket // ticket_surge only
}

// Run correlates one window. It is deterministic for a given source content
// and input, which is what lets the daemon, backtests and the file and
// Elasticsearch sources agree.
func Run(ctx context.Context, src Source, in Input, cfg rules.Correlate) (*Result, error) {
	w := in.Window
	tr, err := src.Traffic(ctx, w)
	if err != nil {
		return nil, err
	}
	w = tr.Window
	now := in.Now
	if now.IsZero() {
		now = w.To
	}
	L := w.Len()
	if tr.Complete > 0 && tr.Complete < L {
		L = tr.Complete
	}
	minBaseline := 0
	if w.Step > 0 {
		minBaseline = int(in.MinBaseline / w.Step)
	}
	dc := detectConfigFor(cfg, L, minBaseline)
	// Onsets are searched in the newest buckets only; the ones before are
	// summarised into each series' baseline (see history).
	off := detectionOffset(cfg, L, w.Step)
	period := seasonalPeriod(cfg, w.Step)
	if off > 0 {
		dc.minBase = max(1, dc.minBase-off)
	}

	var cands []candidate
	var scratch []float64
	sigs := 0
	for _, st := range tr.Services {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		msgs := make([]string, len(st.Messages))
		byMsg := make(map[string]*MessageCounts, len(st.Messages))
		for i := range st.Messages {
			msgs[i] = st.Messages[i].Message
			byMsg[msgs[i]] = &st.Messages[i]
		}
		req := trim(st.Requests, L)
		var eh exposureHistory
		if off > 0 {
			eh = newExposureHistory(req, off, dc.block)
		}
		for _, cl := range template.Group(msgs, template.Options{}) {
			sigs++
			c := candidate{service: st.Service, signature: cl.Template, members: cl.Members, requests: req[off:]}
			for _, m := range cl.Members {
				c.examples = mergeExamples(c.examples, byMsg[m].Examples, 3)
			}
			c.all = signatureCounts(cl.Members, byMsg, L)
			c.hist, scratch = eh.of(c.all, dc.block, scratch)
			if period > 0 {
				all, periods := c.all, cfg.SeasonalPeriods
				c.hist.seasonal = func(start, end int) (float64, bool) {
					return seasonalRate(all, req, off+start, off+end, period, periods)
				}
			}
			cands = append(cands, c)
		}
	}
	// Findings are explained, and deploy-anchored onsets tested, over the
	// searched span: their onsets, charts and per-host series are in it.
	ws := Window{From: w.Start(off), To: w.To, Step: w.Step}
	// The searched span of one series at a time, in one reused buffer:
	// only the series that show an episode keep theirs.
	span := make([]float64, L-off)
	load := func(c *candidate) []float64 {
		clear(span)
		c.all.AddTo(span, off)
		return span
	}
	// The prior burstiness comes from the whole family, so it is computed
	// before any series is judged.
	var alphas []float64
	for i := range cands {
		c := &cands[i]
		if a, ok := seriesAlpha(load(c), c.requests, c.hist, dc.block); ok {
			alphas = append(alphas, a)
		}
	}
	dc.priorAlpha = priorAlpha(alphas)
	for i := range cands {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		c := &cands[i]
		counts := load(c)
		c.ep, c.ok = detect(counts, c.requests, c.hist, dc)
		if ds := anchorDeploys(c.service, in.Deploys, ws, L-off, dc.minBase); len(ds) > 0 {
			// A recent deploy of the service splits the series' budget
			// between the searched onsets and the deploy's (anchored.go).
			if c.ok {
				c.ep.p = clampP(math.Min(1, c.ep.p/(1-anchorWeight)))
			}
			cc := *c
			cc.counts = counts
			ep, ok, err := anchoredTest(ctx, src, cc, ds, ws, dc)
			if err != nil {
				return nil, fmt.Errorf("deploy-anchored test of %s %q: %w", c.service, c.signature, err)
			}
			// A searched episode that has recovered keeps its dates: the
			// anchored one runs to the window's end and would reopen it.
			if ok && (!c.ok || !c.ep.recovered && ep.p < c.ep.p) {
				c.ep, c.ok = ep, true
			}
		}
		if !c.ok {
			continue
		}
		c.counts = append([]float64(nil), counts...)
		if c.ep.newClass && variantErredBefore(cands, i, off+c.ep.start) {
			c.ep.newClass = false
		}
		c.kind = KindErrorIncrease
		if c.ep.newClass {
			c.kind = KindNewError
		} else {
			// Only increases can be held (see sustain.holds).
			c.blocks = sustained(c.counts, c.requests, c.hist, c.ep, holdBuckets(cfg), dc)
		}
	}
	ps := make([]float64, len(cands))
	for i, c := range cands {
		ps[i] = 1
		if c.ok {
			ps[i] = c.ep.p
		}
	}
	qs := benjaminiHochberg(ps)
	family := make([]int, len(cands))
	for i := range family {
		family[i] = len(cands)
	}
	// Ticket volume is its own family of one: it drives a different
	// decision (it never pages), and mixing it into the log series would
	// only dilute both.
	if tc, ok := ticketCandidate(in.Tickets, w, cfg); ok {
		cands = append(cands, tc)
		qs = append(qs, tc.ep.p)
		family = append(family, 1)
	}

	res := &Result{From: w.From, To: w.To, Findings: []Finding{}}
	res.Stats = RunStats{Services: len(tr.Services), Signatures: sigs, Tested: len(cands)}
	for i, c := range cands {
		if !c.ok || qs[i] > cfg.FDR {
			continue
		}
		sig := Significance{Method: Method, PValue: c.ep.p, QValue: qs[i], Tests: family[i]}
		var f Finding
		if c.kind == KindTicketSurge {
			sig.Method = TicketMethod
			f = ticketFinding(c, w, sig, now)
			assess(&f, nil, nil, in.priority(), now)
		} else {
			f, err = explain(ctx, src, c, ws, L-off, w.From, in, cfg, sig, now)
			if err != nil {
				return nil, err
			}
		}
		res.Findings = append(res.Findings, f)
	}
	sort.SliceStable(res.Findings, func(a, b int) bool {
		fa, fb := res.Findings[a], res.Findings[b]
		if fa.Severity.Rank() != fb.Severity.Rank() {
			return fa.Severity.Rank() > fb.Severity.Rank()
		}
		if fa.Significance.QValue != fb.Significance.QValue {
			return fa.Significance.QValue < fb.Significance.QValue
		}
		return fa.Onset.Before(fb.Onset)
	})
	return res, nil
}

// explainBefore is where the explanations' before-onset span starts: a
// lookback before the onset, on a grid of about an hour. It is tied to the
// onset, not to the window, so that it does not shrink as the window
// slides past an open incident (which left an incident open for five of a
// six-hour lookback with half an hour to compare with), and so that an
// incremental source keeps its count of that span whole instead of
// reading the minute that left the window at every evaluation. The grid
// keeps it still while the onset is re-estimated by a minute or two.
func explainBefore(onset time.Time, lookback, step time.Duration) time.Time {
	grid := time.Hour
	if step > 0 {
		grid = step * time.Duration(max(1, (time.Hour+step-1)/step))
	}
	return onset.Add(-lookback).Truncate(grid)
}

// holdBuckets is sustain_without_deploy in whole blocks of buckets.
func holdBuckets(cfg rules.Correlate) int {
	b := cfg.Bucket.D()
	if b <= 0 || cfg.SustainWithoutDeploy.D() <= 0 {
		return 0
	}
	n := int((cfg.SustainWithoutDeploy.D() + b - 1) / b)
	return (n + sustainBlock - 1) / sustainBlock * sustainBlock
}

// detectConfigFor sizes the per-series test for a window of L buckets, in
// which an onset needs at least minBaseline buckets in front of it.
func detectConfigFor(cfg rules.Correlate, L, minBaseline int) detectConfig {
	minBase := 30
	if L < 120 {
		minBase = max(5, L/4)
	}
	if minBaseline > minBase && minBaseline < L {
		minBase = minBaseline
	}
	return detectConfig{
		minErrors:   float64(cfg.MinErrors),
		minRatio:    cfg.MinRatio,
		minBase:     minBase,
		recovery:    cfg.RecoveryBuckets,
		block:       5,
		newShareMax: 0.05,
		corrBuckets: max(1, int(15*time.Minute/cfg.Bucket.D())),
	}
}

// explain turns a significant series into a finding: it asks the source for
// the scope, then attributes, links tickets and grades severity. w is the
// span the onset was searched in, L its complete buckets; the baseline
// reaches back to from.
func explain(ctx context.Context, src Source, c candidate, w Window, L int, from time.Time, in Input, cfg rules.Correlate, sig Significance, now time.Time) (Finding, error) {
	ep := c.ep
	onset := w.Start(ep.start)
	to := w.Start(ep.end)
	sc, err := src.Scope(ctx, ScopeQuery{Service: c.service, Messages: c.members, From: onset, To: to, Window: w})
	if err != nil {
		return Finding{}, err
	}
	f := Finding{
		ID:        FindingID(c.service, c.signature),
		Service:   c.service,
		Kind:      c.kind,
		Signature: c.signature,
		Examples:  nonNil(c.examples),
		Onset:     onset,
		Detected:  now,
		Tickets:   []TicketRef{},
	}
	if ep.recovered {
		r := to
		f.Recovered = &r
	}
	minutes := w.Step.Minutes()
	f.Frequency = Frequency{
		BeforePerMin: safeDiv(ep.baseErr, float64(ep.hist+ep.start)*minutes),
		AfterPerMin:  safeDiv(ep.epErr, float64(ep.end-ep.start)*minutes),
		ShareBefore:  safeDiv(ep.baseErr, ep.baseReq),
		ShareAfter:   safeDiv(ep.epErr, ep.epReq),
		Count:        int64(math.Round(ep.epErr)),
	}
	f.Significance = sig
	f.Scope = summarizeScope(sc)
	f.Samples = sc.Samples
	// The series goes in first: attribution reads the replaced version's
	// own rate before a rollout from it.
	f.Series = &FindingChart{
		Start:    w.From,
		StepSec:  w.Step.Seconds(),
		Errors:   c.counts,
		Requests: c.requests,
		Baseline: scaled(c.requests, ep.baseRate),
	}
	f.SuspectedDeploys = attribute(f, w.Start(ep.boundary), sc, in.Deploys, w, L, cfg)
	if len(f.SuspectedDeploys) > 0 && f.SuspectedDeploys[0].rolloutTied {
		f.Onset = alignedOnset(f.Onset, later(w.Start(ep.boundary), f.Onset), f.SuspectedDeploys[0].ID, in.Deploys, sc, w)
	}
	var suspect *Deploy
	if len(f.SuspectedDeploys) > 0 {
		for i, d := range in.Deploys {
			if d.ID == f.SuspectedDeploys[0].ID {
				suspect = &in.Deploys[i]
				f.Recovery = recoveryFor(f, d, in.Deploys, sc, w, L)
				break
			}
		}
	}
	if suspect == nil {
		f.UnalignedDeploy = unalignedDeploy(f, in.Deploys, w, cfg.AttributionWindow.D())
	} else {
		if f.PreDeployExcess, err = preDeployExcess(ctx, src, c, *suspect, ep.baseRate, float64(cfg.MinErrors), w); err != nil {
			return Finding{}, err
		}
	}
	// Explained after attribution: which hosts are only the suspected
	// rollout's footprint so far depends on the suspect.
	if cc, ok := counterOf(src); ok {
		version := ""
		if suspect != nil {
			version = suspect.Version
		}
		ex, err := explainScope(ctx, cc, sc, ConjunctionQuery{Service: c.service, Messages: c.members, Before: explainBefore(onset, w.To.Sub(from), w.Step), From: onset, To: to}, rolloutFootprint(suspect, sc, w, to), version)
		if err != nil && !errors.Is(err, ErrNoConjunctions) {
			return Finding{}, err
		}
		f.Scope.Explanations = ex
	}
	f.Tickets, f.OtherTickets = linkTickets(f, sc, in.Tickets, to, cfg.Products[c.service])
	carriers, excess := excessCustomers(sc, ep.baseRate)
	held := sustain{blocks: c.blocks, bucket: w.Step}
	f.Severity, f.SeverityReasons = grade(f, carriers, excess, held, cfg)
	f.Headline = Headline(f)
	assess(&f, sc, in.Customers, in.priority(), now)
	return f, nil
}

// rolloutFootprint marks the hosts of the suspected deploy's rollout while
// they say only how far it has got: by the end of the episode the rollout
// had not finished, or, across several hosts, the errors had already
// spread to more than one of them once they ran it. A finished one-host
// deploy (a canary) is where the problem is. Nil when there is no suspect.
func rolloutFootprint(d *Deploy, sc *Scope, w Window, to time.Time) func(Condition) bool {
	if d == nil {
		return nil
	}
	hosts := map[string]bool{}
	reached, erring := 0, 0
	for _, h := range d.Hosts {
		hosts[h.Name] = true
		if h.At.Before(to) {
			reached++
		}
		if errs := sc.HostErrors[h.Name]; w.Index(h.At) >= 0 && w.Index(h.At) < len(errs) && sum(errs[w.Index(h.At):]) > 0 {
			erring++
		}
	}
	// A deploy feed lists a rollout's hosts as they receive it, so one
	// still under way may show a single host: unfinished is what counts.
	finished := !d.FinishedAt.IsZero() && !d.FinishedAt.After(to) && reached == len(d.Hosts)
	if finished && (len(d.Hosts) < 2 || erring < 2) {
		return nil
	}
	return func(c Condition) bool { return c.Field == FieldHost && hosts[c.Value] }
}

// alignedOnset dates an onset from the implicated deploy's rollout: the
// first host that received the version and then produced the errors. A
// series-level onset of an existing, bursty class is uncertain by minutes;
// once the rollout is tied to the errors host by host, the host timeline is
// the sharper clock. The onset only moves within the slack that attribution
// allowed (up to onsetSlack after latest, the segmentation's own dating).
func alignedOnset(onset, latest time.Time, id string, deploys []Deploy, sc *Scope, w Window) time.Time {
	for _, d := range deploys {
		if d.ID != id {
			continue
		}
		first := time.Time{}
		for _, h := range d.Hosts {
			errs := sc.HostErrors[h.Name]
			i := w.Index(h.At)
			if i < 0 || len(errs) == 0 {
				continue
			}
			hit := false
			for j := i; j < len(errs) && j < i+30; j++ {
				if errs[j] > 0 {
					hit = true
					break
				}
			}
			if hit && (first.IsZero() || h.At.Before(first)) {
				first = h.At
			}
		}
		if first.IsZero() || first.Before(onset.Add(-30*time.Minute)) || first.After(latest.Add(onsetSlack(w))) {
			return onset
		}
		return w.Start(w.Index(first))
	}
	return onset
}

// excessCustomers is how many customers it takes to carry 80% of the
// episode's excess errors (over what the baseline rate predicts for each
// customer's traffic), and how many excess errors there are. It tells an infrastructure problem, whose excess
// spreads across many customers, from a few customers' own trouble (a
// credential-stuffing run, a runaway script) that only looks broad because
// everyone else's background errors are counted too.
func excessCustomers(sc *Scope, baseRate float64) (carriers int, excess float64) {
	errs, reqs := sc.Errors[FieldCustomer], sc.Requests[FieldCustomer]
	// The total is the net excess: summing only positive parts would count
	// every customer's ordinary background error as excess.
	total := sumMap(errs) - baseRate*sumMap(reqs)
	ex := make([]float64, 0, len(errs))
	for c, e := range errs {
		if x := e - baseRate*reqs[c]; x > 0 {
			ex = append(ex, x)
		}
	}
	if total <= 0 {
		return 0, 0
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(ex)))
	var acc float64
	for i, x := range ex {
		acc += x
		if acc >= 0.8*total {
			return i + 1, total
		}
	}
	return len(ex), total
}

// FindingID is stable across runs for the same service and signature, so a
// finding seen again in the next evaluation is recognisably the same one.
func FindingID(service, signature string) string {
	h := sha256.Sum256([]byte(service + "\x00" + signature))
	return "f-" + hex.EncodeToString(h[:5])
}

// signatureCounts is the errors of a signature's member messages over n
// buckets: a one-member signature (most of them) shares its message's
// series instead of copying it.
func signatureCounts(members []string, byMsg map[string]*MessageCounts, n int) Counts {
	if len(members) == 1 && byMsg[members[0]].Counts.Len() == n {
		return byMsg[members[0]].Counts
	}
	sum := make([]float64, n)
	for _, m := range members {
		byMsg[m].Counts.AddTo(sum, 0)
	}
	return NewCounts(sum)
}

func trim(x []float64, n int) []float64 {
	if len(x) >= n {
		return x[:n]
	}
	out := make([]float64, n)
	copy(out, x)
	return out
}

func scaled(x []float64, k float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v * k
	}
	return out
}

func mergeExamples(have, more []string, limit int) []string {
	for _, m := range more {
		if len(have) >= limit {
			break
		}
		dup := false
		for _, h := range have {
			if h == m {
				dup = true
				break
			}
		}
		if !dup {
			have = append(have, m)
		}
	}
	return have
}

func nonNil[T any](x []T) []T {
	if x == nil {
		return []T{}
	}
	return x
}

// Percent formats a share for people: two significant digits, never a
// misleading "0%" for a small but real share.
func Percent(x float64) string {
	switch {
	case x <= 0:
		return "0%"
	case x >= 0.1:
		return fmt.Sprintf("%.0f%%", x*100)
	case x >= 0.01:
		return fmt.Sprintf("%.1f%%", x*100)
	default:
		return fmt.Sprintf("%.2g%%", x*100)
	}
}

// variantErredBefore reports whether a variant of cands[i]'s signature, in
// the same service, erred more than newMaxBaseErrors times before bucket
// start of the window.
// Grouping keeps apart messages that differ in one word with few values
// ("deadlock detected on relation sites" and "… deploys"), which is right
// for telling events apart, but such a variant of a class that was already
// there is not a brand-new error: judged alone, a sparse background class
// split three ways would read as new whenever one of its words turned up
// after a quiet spell.
func variantErredBefore(cands []candidate, i, start int) bool {
	c := cands[i]
	var before float64
	for j, o := range cands {
		if j == i || o.service != c.service || !variants(c.signature, o.signature) {
			continue
		}
		before += o.all.Sum(0, start)
	}
	return before > newMaxBaseErrors
}

// variants reports whether two signatures have the same tokens but for
// exactly one position, where both hold a word (not a bare wildcard).
func variants(a, b string) bool {
	ta, tb := strings.Fields(a), strings.Fields(b)
	if len(ta) != len(tb) {
		return false
	}
	diff := 0
	for k := range ta {
		if ta[k] == tb[k] {
			continue
		}
		if diff++; diff > 1 || ta[k] == "<*>" || tb[k] == "<*>" {
			return false
		}
	}
	return diff == 1
}
