package handover

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/culprithq/culprit/escalate"
)

// Text writes the digest for a terminal or a golden file: one block per
// section, times in UTC, every incident with its evidence link.
func Text(w io.Writer, h escalate.Handover) error {
	var b bytes.Buffer
	b.WriteString(Title(h))
	b.WriteString("\n")
	fmt.Fprintf(&b, "\nOpen incidents (%d):\n", len(h.Open))
	writeIncidents(&b, h.Open)
	fmt.Fprintf(&b, "\nResolved during the shift (%d):\n", len(h.Resolved))
	writeIncidents(&b, h.Resolved)
	fmt.Fprintf(&b, "\nPages and acknowledgements (%d):\n", len(h.Pages))
	if len(h.Pages) == 0 {
		b.WriteString("  none\n")
	}
	for _, p := range h.Pages {
		fmt.Fprintf(&b, "  %s  %s  %s", Stamp(p.At), p.IncidentID, PageLabel(p))
		if p.Actor != "" {
			fmt.Fprintf(&b, " by %s", p.Actor)
		}
		fmt.Fprintf(&b, ": %s\n", oneLine(p.Text))
	}
	fmt.Fprintf(&b, "\nCustomers still waiting (%d tickets):\n", len(h.Waiting))
	if len(h.Waiting) == 0 {
		b.WriteString("  none\n")
	}
	for _, t := range h.Waiting {
		fmt.Fprintf(&b, "  #%d  %s  %s  since %s  (%s): %s\n", t.ID, TicketCustomer(t), orDash(t.Status), Stamp(t.CreatedAt), t.IncidentID, oneLine(t.Subject))
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write handover: %w", err)
	}
	return nil
}

// JSON writes the digest as indented JSON; field names are a contract.
func JSON(w io.Writer, h escalate.Handover) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(h); err != nil {
		return fmt.Errorf("write handover json: %w", err)
	}
	return nil
}

// Title is the digest's first line, shared by every rendering.
func Title(h escalate.Handover) string {
	var who string
	switch {
	case h.Shift != "" && h.Previous != "" && h.Previous != h.Shift:
		who = fmt.Sprintf(" from %s to %s", h.Previous, h.Shift)
	case h.Shift != "":
		who = " to " + h.Shift
	}
	return fmt.Sprintf("Handover%s: %s – %s", who, Stamp(h.Since), Stamp(h.Until))
}

func writeIncidents(b *bytes.Buffer, ins []escalate.HandoverIncident) {
	if len(ins) == 0 {
		b.WriteString("  none\n")
	}
	for _, in := range ins {
		fmt.Fprintf(b, "  %s  %s  %s  %s\n", in.ID, Grade(in), Status(in), oneLine(in.Headline))
		if in.URL != "" {
			fmt.Fprintf(b, "    %s\n", in.URL)
		}
	}
}

// Grade is the incident's priority when it has one, else its severity.
func Grade(in escalate.HandoverIncident) string {
	if in.Priority != "" {
		return in.Priority + " (" + orDash(in.Severity) + ")"
	}
	return orDash(in.Severity)
}

// Status says where an incident stands for the next shift: open or
// resolved, paged or not, acknowledged by whom.
func Status(in escalate.HandoverIncident) string {
	parts := []string{string(in.Status)}
	if !in.ResolvedAt.IsZero() {
		parts[0] += " at " + Stamp(in.ResolvedAt)
	}
	switch {
	case !in.PagedAt.IsZero():
		parts = append(parts, "paged "+Stamp(in.PagedAt))
	case in.Action != "":
		parts = append(parts, "routed to "+string(in.Action))
	}
	if in.Acknowledged != "" {
		parts = append(parts, fmt.Sprintf("acknowledged by %s %s", in.Acknowledged, Stamp(in.AcknowledgedAt)))
	} else if !in.PagedAt.IsZero() && in.Status == escalate.StatusOpen {
		parts = append(parts, "not acknowledged")
	}
	if in.Customers > 0 {
		parts = append(parts, fmt.Sprintf("%d customers", in.Customers))
	}
	return strings.Join(parts, ", ")
}

// PageLabel words a paging event's kind: "page sent", "PagerDuty
// acknowledged".
func PageLabel(p escalate.HandoverPage) string {
	k := p.Kind
	pd := false
	for _, prefix := range []string{"incident.", "pagerduty."} {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			k, pd = rest, true
		}
	}
	if k == "acknowledged" {
		pd = true
	}
	k = strings.ReplaceAll(k, "_", " ")
	if pd {
		return "PagerDuty " + k
	}
	return k
}

// TicketCustomer names a waiting ticket's customer: name and tier when
// known, else the organization id.
func TicketCustomer(t escalate.HandoverTicket) string {
	org := "no organization"
	if t.Organization != 0 {
		org = fmt.Sprintf("org %d", t.Organization)
	}
	switch {
	case t.Customer != "" && t.Tier != "":
		return fmt.Sprintf("%s (%s, %s)", t.Customer, t.Tier, org)
	case t.Customer != "":
		return fmt.Sprintf("%s (%s)", t.Customer, org)
	}
	return org
}

// Stamp writes a time as the digest does.
func Stamp(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
