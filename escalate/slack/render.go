package slack

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	slackgo "github.com/slack-go/slack"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate/report"
)

// Block Kit limits. Slack rejects the whole message (invalid_blocks) when
// one is exceeded, so a long signature or a flood of tickets must never
// cost the answer. Sources: https://api.slack.com/reference/block-kit/blocks,
// https://api.slack.com/reference/block-kit/block-elements and
// https://api.slack.com/reference/block-kit/composition-objects.
const (
	MaxBlocks          = 50   // blocks in one message
	MaxSectionText     = 3000 // section block text
	MaxSectionFields   = 10   // fields in one section block
	MaxFieldText       = 2000 // each section field
	MaxHeaderText      = 150  // header block text
	MaxContextElements = 10   // elements in one context block
	MaxContextText     = 3000 // each context text element (a text object)
	MaxActionElements  = 25   // elements in one actions block
	MaxButtonText      = 75   // button label
	MaxButtonValue     = 2000 // button value
	MaxURL             = 3000 // button url, image_url
	MaxImageAlt        = 2000 // image alt_text
	MaxImageTitle      = 2000 // image title
	MaxConfirmTitle    = 100  // confirm dialog title
	MaxConfirmText     = 300  // confirm dialog text
	MaxConfirmButton   = 30   // confirm dialog confirm and deny labels
	// MaxFallbackText bounds the top-level text shown in notifications.
	// chat.postMessage truncates at 40,000 characters and advises 4,000;
	// a notification needs far less.
	MaxFallbackText = 3000
)

// MaxFindings is how many findings one message details. More do not fit
// the block budget, and nobody reads the ninth: the rest are counted in a
// closing line.
const MaxFindings = 8

// Rendering choices that are not Slack limits but keep a finding readable.
const (
	maxSignature     = 500 // runes of the signature shown
	maxReasons       = 3   // reasons shown for the top suspect
	maxTickets       = 5   // tickets listed by subject
	maxTicketSubject = 80  // runes of each subject
	maxTicketReason  = 120 // runes of each ticket's reason
	maxOtherSuspects = 5   // further suspects named by id
	maxErrorText     = 1000
)

// ActionPage and ActionOpenEvidence are the action_ids of the buttons on
// every finding; the interactions endpoint dispatches on them.
const (
	ActionPage         = "page"
	ActionOpenEvidence = "open_evidence"
)

// Blocks renders an answer as Block Kit, within Slack's limits whatever
// the answer holds. The same blocks serve /correlate replies and the
// daemon's channel posts, so support reads one layout everywhere.
func Blocks(a Answer) []slackgo.Block {
	head := strings.TrimSpace(a.Headline)
	if head == "" {
		head = "culprit"
	}
	blocks := []slackgo.Block{
		slackgo.NewHeaderBlock(plain(clip(head, MaxHeaderText))),
	}
	shown := 0
	for i, it := range a.Items {
		fb := itemBlocks(it)
		extra := 0
		if shown > 0 {
			extra = 1 // divider
		}
		// Keep one block for the "and N more" line whenever more follow.
		reserve := 0
		if i < len(a.Items)-1 {
			reserve = 1
		}
		if shown == MaxFindings || len(blocks)+extra+len(fb)+reserve > MaxBlocks {
			break
		}
		if extra > 0 {
			blocks = append(blocks, slackgo.NewDividerBlock())
		}
		blocks = append(blocks, fb...)
		shown++
	}
	if rest := len(a.Items) - shown; rest > 0 {
		blocks = append(blocks, slackgo.NewContextBlock("",
			mrkdwn(fmt.Sprintf("…and %s not shown here; the evidence pages list them all.", correlate.Plural(rest, "more finding")))))
	}
	return blocks
}

// FallbackText is the message's top-level text: what notifications,
// screen readers and clients without Block Kit show.
func FallbackText(a Answer) string {
	var b strings.Builder
	b.WriteString(escape(clip(oneLine(a.Headline), 300)))
	tail := ""
	for i, it := range a.Items {
		if i == MaxFindings {
			tail = fmt.Sprintf("\n…and %d more", len(a.Items)-i)
			break
		}
		fmt.Fprintf(&b, "\n• [%s] %s", strings.ToUpper(string(it.Finding.Severity)), escape(clip(oneLine(it.Finding.Headline), 300)))
	}
	s := clipMrkdwn(strings.TrimSpace(b.String()), MaxFallbackText-utf8.RuneCountInString(tail)) + tail
	if strings.TrimSpace(s) == "" {
		s = "culprit"
	}
	return s
}

// itemBlocks renders one finding: what and how often, who, why (suspect
// and tickets), the chart, the facts, and the buttons.
func itemBlocks(it Item) []slackgo.Block {
	f := it.Finding
	title := fmt.Sprintf("%s *%s*", severityMark(f.Severity), escape(clip(oneLine(f.Headline), 500)))
	if p := f.Priority; p != nil {
		title = fmt.Sprintf("%s *%s* %s", severityMark(f.Severity), escape(clip(p.Level, 10)), escape(clip(oneLine(f.Headline), 500)))
	}
	if f.Signature != "" {
		title += "\n`" + codeSafe(clip(oneLine(f.Signature), maxSignature)) + "`"
	}
	fields := []*slackgo.TextBlockObject{
		mrkdwn(clipMrkdwn(frequencyText(f), MaxFieldText)),
		mrkdwn(clipMrkdwn(scopeText(f), MaxFieldText)),
	}
	out := []slackgo.Block{
		slackgo.NewSectionBlock(mrkdwn(clipMrkdwn(title, MaxSectionText)), fields, nil),
		slackgo.NewSectionBlock(mrkdwn(clipMrkdwn(suspectText(f)+"\n"+ticketText(f, it.EvidenceURL), MaxSectionText)), nil, nil),
	}
	if u, ok := httpURL(it.ChartURL, true); ok {
		alt := fmt.Sprintf("Chart of %s errors per minute for %q around the onset at %s", orAll(f.Service), oneLine(f.Signature), f.Onset.UTC().Format("15:04 UTC"))
		out = append(out, slackgo.NewImageBlock(u, clip(alt, MaxImageAlt), "",
			plain(clip("errors per minute, "+orAll(f.Service), MaxImageTitle))))
	}
	out = append(out, slackgo.NewContextBlock("", contextElements(f)...))
	var buttons []slackgo.BlockElement
	if id := it.IncidentID; id != "" && utf8.RuneCountInString(id) <= MaxButtonValue {
		// An id cut short would page the wrong incident, or none: a
		// button is only offered for an id that fits whole.
		confirm := slackgo.NewConfirmationBlockObject(
			plain(clip("Page on-call?", MaxConfirmTitle)),
			plain(clip(fmt.Sprintf("This wakes the on-call engineer for %s through PagerDuty (incident %s).", orAll(f.Service), id), MaxConfirmText)),
			plain(clip("Page", MaxConfirmButton)),
			plain(clip("Cancel", MaxConfirmButton)),
		)
		buttons = append(buttons, slackgo.NewButtonBlockElement(ActionPage, id, plain(clip("Page on-call", MaxButtonText))).
			WithStyle(slackgo.StyleDanger).WithConfirm(confirm))
	}
	if u, ok := httpURL(it.EvidenceURL, false); ok {
		buttons = append(buttons, slackgo.NewButtonBlockElement(ActionOpenEvidence, "", plain(clip("Open evidence", MaxButtonText))).WithURL(u))
	}
	if len(buttons) > 0 {
		out = append(out, slackgo.NewActionBlock("", buttons[:min(len(buttons), MaxActionElements)]...))
	}
	return out
}

func frequencyText(f correlate.Finding) string {
	fr := f.Frequency
	if f.Kind == correlate.KindTicketSurge {
		return fmt.Sprintf("*Frequency*\n%s tickets/h after onset, %s/h before; %s",
			report.Number(fr.AfterPerMin*60), report.Number(fr.BeforePerMin*60), correlate.Plural(int(fr.Count), "ticket"))
	}
	return fmt.Sprintf("*Frequency*\n%s/min after onset (%s), %s/min before\n%s of all %s requests after onset (%s), %s before",
		report.Number(fr.AfterPerMin), report.Magnitude(fr.AfterPerMin), report.Number(fr.BeforePerMin),
		correlate.Percent(fr.ShareAfter), f.Service, report.OneIn(fr.ShareAfter), correlate.Percent(fr.ShareBefore))
}

func scopeText(f correlate.Finding) string {
	var b strings.Builder
	b.WriteString("*Scope*\n")
	if f.Kind == correlate.KindTicketSurge {
		b.WriteString("tickets only: no error series")
		return b.String()
	}
	a := f.Scope.Affected
	fmt.Fprintf(&b, "%s, %s, %s", correlate.Plural(a[correlate.FieldCustomer], "customer"),
		correlate.Plural(a[correlate.FieldSite], "site"), correlate.Plural(a[correlate.FieldHost], "host"))
	if c := f.Customers; c != nil {
		fmt.Fprintf(&b, "\n%s", escape(clip(oneLine(c.Summary), 300)))
	}
	if ev, ok := correlate.ConfinedEvidence(&f); ok && len(ev.Sites) > 0 {
		// One customer carries it: where, for whoever talks to them.
		fmt.Fprintf(&b, "\ntheir sites: %s", escape(clip(strings.Join(ev.Sites[:min(len(ev.Sites), 3)], ", "), 300)))
		if ev.Owner != "" {
			fmt.Fprintf(&b, " · owner %s", escape(clip(ev.Owner, 100)))
		}
	}
	if e, ok := correlate.TopExplanation(f); ok {
		fmt.Fprintf(&b, "\nexplained by: `%s` %s", codeSafe(clip(oneLine(e.Label()), 200)), e.Evidence(f.Service))
	}
	if len(f.Scope.Concentration) > 0 {
		c := f.Scope.Concentration[0]
		fmt.Fprintf(&b, "\nmost concentrated: `%s` %s of the errors, %s of %s requests",
			codeSafe(clip(oneLine(c.Field+"="+c.Value), 200)), correlate.Percent(c.ShareOfErrors), correlate.Percent(c.ShareOfRequests), f.Service)
	}
	return b.String()
}

func suspectText(f correlate.Finding) string {
	if len(f.SuspectedDeploys) == 0 {
		if f.Kind == correlate.KindTicketSurge {
			return "*Suspect:* none"
		}
		return "*Suspect:* none: no deploy is tied to these errors by rollout or version evidence"
	}
	s := f.SuspectedDeploys[0]
	var b strings.Builder
	fmt.Fprintf(&b, "*Suspect:* %s %s %s (score %.2f)", link(s.URL, clip(s.ID, 100)),
		escape(clip(s.Service, 100)), escape(clip(s.Version, 100)), s.Score)
	for _, r := range s.Reasons[:min(len(s.Reasons), maxReasons)] {
		b.WriteString("\n• " + escape(clip(oneLine(r), 300)))
	}
	if others := f.SuspectedDeploys[1:]; len(others) > 0 {
		var ids []string
		for _, o := range others[:min(len(others), maxOtherSuspects)] {
			ids = append(ids, escape(clip(o.ID, 100)))
		}
		more := ""
		if len(others) > maxOtherSuspects {
			more = fmt.Sprintf(" and %d more", len(others)-maxOtherSuspects)
		}
		fmt.Fprintf(&b, "\n_also suspected: %s%s_", strings.Join(ids, ", "), more)
	}
	return b.String()
}

// ticketText lists the related tickets best first, each with why it is
// related, then the affected customers' other tickets as a count that
// links to the evidence page's list of them.
func ticketText(f correlate.Finding, evidenceURL string) string {
	var b strings.Builder
	if len(f.Tickets) == 0 {
		b.WriteString("*Tickets:* none linked")
	} else {
		fmt.Fprintf(&b, "*Tickets (%d):*", len(f.Tickets))
		for _, t := range f.Tickets[:min(len(f.Tickets), maxTickets)] {
			fmt.Fprintf(&b, "\n#%d “%s”", t.ID, escape(clip(oneLine(t.Subject), maxTicketSubject)))
			if t.OrganizationID != 0 {
				fmt.Fprintf(&b, " (org %d)", t.OrganizationID)
			}
			if t.Reason != "" {
				fmt.Fprintf(&b, " _%s_", escape(clip(oneLine(t.Reason), maxTicketReason)))
			}
		}
		if len(f.Tickets) > maxTickets {
			fmt.Fprintf(&b, "\n…and %d more", len(f.Tickets)-maxTickets)
		}
	}
	if n := len(f.OtherTickets); n > 0 {
		note := correlate.OtherTicketsNote(n)
		if u, ok := httpURL(evidenceURL, false); ok {
			fmt.Fprintf(&b, "\n<%s#%s|%s>", u, correlate.OtherTicketsAnchor, escape(note))
		} else {
			fmt.Fprintf(&b, "\n%s", escape(note))
		}
	}
	return b.String()
}

func contextElements(f correlate.Finding) []slackgo.MixedElement {
	facts := []string{}
	if f.ID != "" {
		facts = append(facts, "`"+codeSafe(clip(f.ID, 100))+"`")
	}
	facts = append(facts, escape(string(f.Kind)))
	if f.Service != "" {
		facts = append(facts, escape(clip(f.Service, 100)))
	}
	if !f.Onset.IsZero() {
		facts = append(facts, "onset "+stamp(f.Onset))
	}
	if f.Recovered != nil && f.Recovery != nil {
		facts = append(facts, escape(clip(f.Recovery.Sentence(f.Recovered), 200)))
	} else if f.Recovered != nil {
		facts = append(facts, "recovered "+stamp(*f.Recovered))
	} else {
		facts = append(facts, "not recovered")
	}
	if p := f.PreDeployExcess; p != nil {
		facts = append(facts, escape(clip(p.Sentence(), 300)))
	}
	els := []slackgo.MixedElement{mrkdwn(clipMrkdwn(strings.Join(facts, " · "), MaxContextText))}
	if p := f.Priority; p != nil {
		els = append(els, mrkdwn(clipMrkdwn(escape(oneLine(p.Level+": "+p.Why+" ("+p.Facts+")")), MaxContextText)))
	}
	if len(f.SeverityReasons) > 0 {
		why := fmt.Sprintf("%s: %s", f.Severity, strings.Join(f.SeverityReasons, "; "))
		els = append(els, mrkdwn(clipMrkdwn(escape(oneLine(why)), MaxContextText)))
	}
	return els[:min(len(els), MaxContextElements)]
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func severityMark(s correlate.Severity) string {
	switch s {
	case correlate.SeverityPage:
		return ":rotating_light: [PAGE]"
	case correlate.SeverityNotify:
		return ":warning: [NOTIFY]"
	}
	return ":information_source: [" + strings.ToUpper(string(s)) + "]"
}

func plain(s string) *slackgo.TextBlockObject {
	if s == "" {
		s = " "
	}
	return slackgo.NewTextBlockObject(slackgo.PlainTextType, s, false, false)
}

func mrkdwn(s string) *slackgo.TextBlockObject {
	if s == "" {
		s = " "
	}
	return slackgo.NewTextBlockObject(slackgo.MarkdownType, s, false, false)
}

// escape applies the only escaping Slack's mrkdwn asks for: &, < and >
// are control characters (links, mentions).
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// codeSafe makes s safe inside a `code span`: escaped, and without the
// backticks that would end it.
func codeSafe(s string) string { return escape(strings.ReplaceAll(s, "`", "'")) }

// oneLine folds line breaks, which would break the layout of fields.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// link writes a mrkdwn link when u is a plain http(s) URL, else just the
// text: a URL carrying mrkdwn's own delimiters cannot be linked safely.
func link(u, text string) string {
	if v, ok := httpURL(u, false); ok && !strings.ContainsAny(v, "|<> ") {
		return "<" + v + "|" + escape(text) + ">"
	}
	return escape(text)
}

// httpURL accepts an absolute http(s) URL (https only if httpsOnly, as
// Slack fetches images itself) that fits Slack's URL limit. A URL cannot
// be shortened without breaking it, so one that does not fit is dropped.
func httpURL(raw string, httpsOnly bool) (string, bool) {
	raw = strings.TrimSpace(raw)
	if raw == "" || utf8.RuneCountInString(raw) > MaxURL {
		return "", false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && (httpsOnly || u.Scheme != "http")) {
		return "", false
	}
	return raw, true
}

// clip shortens s to at most n runes, marking the cut with "…".
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	r := []rune(s)
	return strings.TrimRightFunc(string(r[:n-1]), func(r rune) bool { return r == ' ' || r == '\n' }) + "…"
}

// clipMrkdwn is clip for text already escaped and linked: it never leaves
// half an entity ("&am") or half a link ("<https://…") behind the cut.
func clipMrkdwn(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	cut := string([]rune(s)[:n-1])
	if amp := strings.LastIndexByte(cut, '&'); amp >= 0 && !strings.Contains(cut[amp:], ";") {
		cut = cut[:amp]
	}
	if lt := strings.LastIndexByte(cut, '<'); lt >= 0 && !strings.Contains(cut[lt:], ">") {
		cut = cut[:lt]
	}
	return cut + "…"
}

func orAll(service string) string {
	if service == "" {
		return "all services"
	}
	return service
}
