package correlate

import (
	"fmt"
	"strings"
	"time"

	"github.com/culprithq/culprit/rules"
)

// grade decides how loudly to escalate. Significance is already given (the
// finding passed the false-discovery threshold); what remains is breadth,
// because paging at night is for problems of the infrastructure, and a
// single customer's breakage is support's to handle by day.
func grade(f Finding, carriers int, excess float64, held sustain, cfg rules.Correlate) (Severity, []string) {
	customers := f.Scope.Affected[FieldCustomer]
	hosts := f.Scope.Affected[FieldHost]
	sig := fmt.Sprintf("q=%.2g across %d series (fdr %.2g)", f.Significance.QValue, f.Significance.Tests, cfg.FDR)
	if f.Kind == KindNewError && customers < cfg.NewErrorMinEntities && hosts < cfg.NewErrorMinEntities {
		return SeverityInfo, []string{fmt.Sprintf("new signature reached only %d customers on %d hosts (needs %d of either)", customers, hosts, cfg.NewErrorMinEntities), sig}
	}
	if org, ok := singleCustomer(f); ok {
		who := "one customer carries the errors"
		if o, share, ok := oneCustomerShare(f); ok {
			who = fmt.Sprintf("one customer (organization.id=%s) carries %s of the errors", o, Percent(share))
		} else if org != "" {
			who = "one customer (organization.id=" + org + ") carries the errors"
		}
		// The count the headline gives, so the two never seem to disagree.
		if customers > 1 {
			who += fmt.Sprintf(" of the %d customers affected", customers)
		}
		return SeverityNotify, []string{who + ": a customer-specific problem", sig}
	}
	need, because := pageMinCustomers(f, cfg)
	if carriers > 0 && carriers < need && judgeCarriers(f.Kind, excess, need) {
		return SeverityNotify, []string{fmt.Sprintf("%s carry 80%% of the excess errors (page needs %d%s): a problem of a few customers, not of the infrastructure", Plural(carriers, "customer"), need, because), sig}
	}
	if customers < need {
		return SeverityNotify, []string{fmt.Sprintf("only %d customers affected (page needs %d%s)", customers, need, because), sig}
	}
	if why, ok := held.holds(f, cfg); ok {
		return SeverityNotify, []string{why, sig}
	}
	return SeverityPage, []string{fmt.Sprintf("%d customers on %d hosts affected (page needs %d customers%s)", customers, hosts, need, because), sig}
}

// pageMinCustomers is the breadth a page needs, and why when it is not
// page_min_customers: a new class a deploy is suspected of causing, or an
// increase a deploy is tied to by corroborated evidence, needs only
// page_min_customers_deploy (rules.Correlate says why). An increase tied
// by one line of evidence is not: that tie is what chance gives (see
// corroborated), and a few customers' own trouble on the updated hosts
// would pass for ours.
func pageMinCustomers(f Finding, cfg rules.Correlate) (int, string) {
	if len(f.SuspectedDeploys) == 0 || cfg.PageMinCustomersDeploy <= 0 || cfg.PageMinCustomersDeploy >= cfg.PageMinCustomers {
		return cfg.PageMinCustomers, ""
	}
	switch {
	case f.Kind == KindNewError:
		return cfg.PageMinCustomersDeploy, " for a new class a deploy is suspected of"
	case f.Kind == KindErrorIncrease && f.SuspectedDeploys[0].corroborated:
		return cfg.PageMinCustomersDeploy, " for an increase a deploy is tied to"
	}
	return cfg.PageMinCustomers, ""
}

// sustain is what the hold on deploy-less increases looks at: the newest
// blocks of the series against the episode's baseline.
type sustain struct {
	blocks []blockRate // oldest first
	bucket time.Duration
}

// holds says why a broad finding is not paged yet. Only an increase in an
// existing class with no deploy implicated, or with a deploy suspected on
// a single moderate line of evidence (see corroborated), is held: such a class has a
// history of errors, and bursts of it (a flapping upstream, a scanner
// tripping the WAF, a deadlock storm) fade within minutes without anyone
// acting. It pages once every block of the last sustain_without_deploy
// has been elevated and the newest is not fading (its excess at least half
// the strongest block's): Prometheus's "for:", applied where no change of
// ours explains the errors. Reading the blocks rather than the time since the onset
// matters: an onset dated early, or a class elevated for hours by one
// burst after another, would otherwise count as sustained at the next
// burst. A new class, or an increase tied to a deploy by corroborated
// evidence, is what someone can act on now, and waits for nothing.
func (s sustain) holds(f Finding, cfg rules.Correlate) (string, bool) {
	need := cfg.SustainWithoutDeploy.D()
	if need <= 0 || f.Kind != KindErrorIncrease {
		return "", false
	}
	oneLine := len(f.SuspectedDeploys) > 0
	if oneLine && f.SuspectedDeploys[0].corroborated {
		return "", false
	}
	ok := len(s.blocks) > 0
	strongest := 0.0
	ratios := make([]string, len(s.blocks))
	for i, b := range s.blocks {
		ok = ok && b.elevated(cfg.MinRatio)
		strongest = max(strongest, b.ratio)
		ratios[i] = fmt.Sprintf("%.1f×", b.ratio)
	}
	// Fading is judged on the excess over the baseline, not the ratio: a
	// burst decaying with a 5-minute time constant keeps 37% of its excess
	// from one block to the next, which a ratio diluted by the baseline
	// itself would hide.
	if ok && s.blocks[len(s.blocks)-1].ratio-1 >= (strongest-1)/2 {
		return "", false
	}
	why := fmt.Sprintf("no deploy implicated: an increase in an existing class pages once it has stayed elevated for %s without fading", need)
	if oneLine {
		why = fmt.Sprintf("deploy %s is suspected on one line of evidence only, which chance gives a harmless deploy every few days: an increase in an existing class pages once it has stayed elevated for %s without fading, or as soon as a second line or a strong one ties it to the deploy",
			f.SuspectedDeploys[0].ID, need)
	}
	if len(s.blocks) > 0 {
		why += fmt.Sprintf(" (the last %s ran at %s the baseline, by %s)", time.Duration(len(s.blocks)*sustainBlock)*s.bucket,
			strings.Join(ratios, ", "), time.Duration(sustainBlock)*s.bucket)
	}
	return why, true
}

// Headline is the one sentence a support engineer would paste into a page.
func Headline(f Finding) string {
	if f.Kind == KindTicketSurge {
		return fmt.Sprintf("Ticket surge: %d tickets from %d customers since %s UTC (%.1f/h, baseline %.1f/h) about %s.",
			f.Frequency.Count, f.Scope.Affected[FieldCustomer], f.Onset.UTC().Format("15:04"),
			f.Frequency.AfterPerMin*60, f.Frequency.BeforePerMin*60, quoteSig(strings.TrimPrefix(f.Signature, "ticket volume: ")))
	}
	var b strings.Builder
	what := "a new error class " + quoteSig(f.Signature)
	if f.Kind == KindErrorIncrease {
		ratio := "an increase"
		if f.Frequency.ShareBefore > 0 {
			n := fmt.Sprintf("%.0f", f.Frequency.ShareAfter/f.Frequency.ShareBefore)
			ratio = article(n) + " " + n + "× increase"
		}
		what = ratio + " in " + quoteSig(f.Signature)
	}
	if len(f.SuspectedDeploys) > 0 {
		s := f.SuspectedDeploys[0]
		fmt.Fprintf(&b, "%s %s (deploy %s, %s) is the suspected cause of %s", s.Service, s.Version, s.ID, rolloutSpan(s), what)
	} else {
		fmt.Fprintf(&b, "%s in %s", upperFirst(what), f.Service)
	}
	fmt.Fprintf(&b, " affecting %s", Plural(f.Scope.Affected[FieldCustomer], "customer"))
	if org, share, ok := oneCustomerShare(f); ok {
		fmt.Fprintf(&b, " (%s of the errors from organization.id=%s)", Percent(share), org)
	}
	all := "all " + f.Service + " requests"
	if e, ok := TopExplanation(f); ok {
		fmt.Fprintf(&b, ", %s of the errors for %s, where %s of requests failed (%s of %s)",
			Percent(e.ShareOfErrors), e.Phrase(), Percent(e.ErrorRate), Percent(f.Frequency.ShareAfter), all)
	} else if c, ok := headlineConcentration(f); ok {
		share := f.Frequency.ShareAfter * c.ShareOfErrors / c.ShareOfRequests
		fmt.Fprintf(&b, ", %s of requests on %s=%s failed (%s of %s)", Percent(share), c.Field, c.Value, Percent(f.Frequency.ShareAfter), all)
	} else {
		fmt.Fprintf(&b, ", %s of %s failed", Percent(f.Frequency.ShareAfter), all)
	}
	fmt.Fprintf(&b, "; started %s", f.Onset.UTC().Format("15:04"))
	if f.Recovered != nil {
		fmt.Fprintf(&b, ", recovered %s", f.Recovered.UTC().Format("15:04"))
	}
	if len(f.SuspectedDeploys) == 0 {
		b.WriteString("; no deploy implicated")
	}
	fmt.Fprintf(&b, "; %s.", Plural(len(f.Tickets), "related ticket"))
	return b.String()
}

// headlineConcentration picks the value to name in the headline: the
// strongest one that is not a single customer, site or host, because "on
// cloud.provider=aws" tells infra where to look and one host rarely does.
func headlineConcentration(f Finding) (Concentration, bool) {
	if org, ok := singleCustomer(f); ok && org != "" {
		for _, c := range f.Scope.Concentration {
			if c.Field == FieldCustomer && c.ShareOfRequests > 0 {
				return c, true
			}
		}
	}
	for _, c := range f.Scope.Concentration {
		switch c.Field {
		case FieldCustomer, FieldSite, FieldPath:
			continue
		}
		if c.ShareOfErrors >= 0.9 && c.ShareOfRequests > 0 {
			return c, true
		}
	}
	return Concentration{}, false
}

func rolloutSpan(s Suspect) string {
	if s.FinishedAt.IsZero() {
		return "rolled out from " + s.StartedAt.UTC().Format("15:04") + " UTC"
	}
	return fmt.Sprintf("rolled out %s–%s UTC", s.StartedAt.UTC().Format("15:04"), s.FinishedAt.UTC().Format("15:04"))
}

// quoteSig shortens a signature for a headline at a word boundary, so the
// reader never sees half a word and mistakes it for the error text.
func quoteSig(s string) string {
	const limit = 64
	r := []rune(s)
	if len(r) > limit {
		cut := limit
		for cut > limit/2 && r[cut] != ' ' {
			cut--
		}
		s = strings.TrimRight(string(r[:cut]), " :,") + " …"
	}
	return "'" + s + "'"
}

// article picks "a" or "an" for a number as it is spoken: "an 8×", "an 18×".
func article(num string) string {
	eleven := strings.HasPrefix(num, "11") || strings.HasPrefix(num, "18")
	if strings.HasPrefix(num, "8") || eleven && (len(num) == 2 || len(num) == 5) {
		return "an"
	}
	return "a"
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// Plural writes "1 customer", "3 customers".
// OtherTicketsNote says how many tickets affected customers filed that are
// not obviously related, the words every output uses for them: support
// should know they exist without reading them as evidence.
func OtherTicketsNote(n int) string {
	if n == 1 {
		return "1 more ticket from affected customers, not obviously related"
	}
	return fmt.Sprintf("%d more tickets from affected customers, not obviously related", n)
}

// OtherTicketsAnchor is the fragment of the evidence page that lists them.
const OtherTicketsAnchor = "other-tickets"

func Plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// judgeCarriers says whether there are enough excess errors for the carrier
// count to tell a few customers' trouble from a broad one. Eighty per cent
// of eight errors can be carried by at most seven customers, and chance
// alone puts two or three of them on one busy customer, so the first
// minutes of a rollout looked like "a problem of 3 customers" and were
// graded notify until the count had grown (the simulated Friday paged at
// +5 minutes instead of +3). A brand-new class has no background whose
// errors could pass for breadth, so until it has four excess errors per
// customer that a page needs, the distinct customers it reached are the
// measure. An increase in an existing class is always judged by carriers:
// its background errors reach many customers whatever the cause.
func judgeCarriers(kind Kind, excess float64, need int) bool {
	return kind != KindNewError || excess >= float64(4*need)
}
