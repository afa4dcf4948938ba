package slack

import (
	"fmt"
	"strings"

	slackgo "github.com/slack-go/slack"

	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/escalate/handover"
)

// Rendering choices for a handover digest: the next shift reads the
// first screenful; the evidence pages and `culprit handover` hold the rest.
const (
	maxHandoverIncidents = 10
	maxHandoverLines     = 15
)

// HandoverBlocks renders a shift's handover digest as Block Kit, within
// Slack's limits however long the shift was: a header, the open incidents
// one section each with their evidence links, then the resolved ones, the
// pages and acknowledgements, and the customers still waiting, each list
// cut with a count of the rest.
func HandoverBlocks(h escalate.Handover) []slackgo.Block {
	blocks := []slackgo.Block{slackgo.NewHeaderBlock(plain(clip(handover.Title(h), MaxHeaderText)))}
	section := func(s string) {
		blocks = append(blocks, slackgo.NewSectionBlock(mrkdwn(clipMrkdwn(s, MaxSectionText)), nil, nil))
	}
	section(fmt.Sprintf("*Open incidents (%d)*%s", len(h.Open), none(len(h.Open))))
	for i, in := range h.Open {
		if i == maxHandoverIncidents {
			section(fmt.Sprintf("…and %d more open incidents; the evidence pages list them all.", len(h.Open)-i))
			break
		}
		section(incidentLine(in) + "\n" + escape(clip(oneLine(in.Headline), 500)))
	}
	var lines []string
	for _, in := range h.Resolved {
		lines = append(lines, "• "+incidentLine(in))
	}
	section(fmt.Sprintf("*Resolved during the shift (%d)*%s", len(h.Resolved), list(lines, "resolved incidents")))
	lines = lines[:0]
	for _, p := range h.Pages {
		l := fmt.Sprintf("• %s %s: %s", p.At.UTC().Format("15:04"), escape(p.IncidentID), escape(handover.PageLabel(p)))
		if p.Actor != "" {
			l += " by " + escape(clip(p.Actor, 80))
		}
		lines = append(lines, l)
	}
	section(fmt.Sprintf("*Pages and acknowledgements (%d)*%s", len(h.Pages), list(lines, "events")))
	lines = lines[:0]
	for _, t := range h.Waiting {
		lines = append(lines, fmt.Sprintf("• #%d %s (%s, since %s, %s): %s", t.ID, escape(handover.TicketCustomer(t)),
			escape(cmpOr(t.Status, "status unknown")), t.CreatedAt.UTC().Format("15:04"), escape(t.IncidentID),
			escape(clip(oneLine(t.Subject), maxTicketSubject))))
	}
	section(fmt.Sprintf("*Customers still waiting (%d tickets)*%s", len(h.Waiting), list(lines, "tickets")))
	return blocks
}

// HandoverText is the digest's fallback text, for notifications.
func HandoverText(h escalate.Handover) string {
	return clipMrkdwn(escape(fmt.Sprintf("%s: %d open, %d resolved, %d pages and acknowledgements, %d tickets waiting",
		handover.Title(h), len(h.Open), len(h.Resolved), len(h.Pages), len(h.Waiting))), MaxFallbackText)
}

func incidentLine(in escalate.HandoverIncident) string {
	id := escape(in.ID)
	if in.URL != "" {
		id = link(in.URL, in.ID)
	}
	return fmt.Sprintf("%s · %s · %s · %s", id, escape(in.Service), escape(handover.Grade(in)), escape(handover.Status(in)))
}

func none(n int) string {
	if n == 0 {
		return "\nnone"
	}
	return ""
}

// list joins up to maxHandoverLines lines under a section title.
func list(lines []string, what string) string {
	if len(lines) == 0 {
		return "\nnone"
	}
	more := ""
	if len(lines) > maxHandoverLines {
		more = fmt.Sprintf("\n…and %d more %s", len(lines)-maxHandoverLines, what)
		lines = lines[:maxHandoverLines]
	}
	return "\n" + strings.Join(lines, "\n") + more
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
