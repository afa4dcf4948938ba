package file

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/culprithq/culprit/correlate"
)

type rawTicket struct {
	ID             json.RawMessage `json:"id"`
	CreatedAt      *string         `json:"created_at"`
	Subject        *string         `json:"subject"`
	Description    *string         `json:"description"`
	Priority       *string         `json:"priority"`
	Status         *string         `json:"status"`
	Tags           []string        `json:"tags"`
	OrganizationID json.RawMessage `json:"organization_id"`
	RequesterID    json.RawMessage `json:"requester_id"`
	Via            json.RawMessage `json:"via"`
}

// ReadTickets reads a Zendesk incremental export: one page
// {"tickets":[...],"after_cursor":...}, several pages back to back (as a
// paging script appends them), a bare JSON array of tickets, or a sequence of
// single ticket objects; gzipped or not.
//
// An incremental export lists a ticket again each time it is updated, so a
// ticket id seen twice is kept once, in its last (newest) form: counting it
// twice would fake a ticket surge. The result is sorted by CreatedAt, then ID.
func ReadTickets(path string) ([]correlate.Ticket, error) {
	s, err := openJSONStream("tickets", path)
	if err != nil {
		return nil, err
	}
	defer s.close()
	byID := map[int64]int{}
	var out []correlate.Ticket
	keep := func(t correlate.Ticket) {
		if i, ok := byID[t.ID]; ok {
			out[i] = t
			return
		}
		byID[t.ID] = len(out)
		out = append(out, t)
	}
	page := 0
	for {
		r, err := s.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if s.array {
			t, err := decodeTicket(r.raw)
			if err != nil {
				return nil, fmt.Errorf("tickets %s: %s%s: %w", path, r.where(), idNote(r.raw), err)
			}
			keep(t)
			continue
		}
		if err := objectOnly(r.raw); err != nil {
			return nil, fmt.Errorf("tickets %s: %s: %w", path, r.where(), err)
		}
		var pg struct {
			Tickets *[]json.RawMessage `json:"tickets"`
		}
		if err := json.Unmarshal(r.raw, &pg); err != nil {
			return nil, fmt.Errorf("tickets %s: %s: %w", path, r.where(), typeErr(err))
		}
		if pg.Tickets == nil {
			// Not a page: a single ticket per value.
			t, err := decodeTicket(r.raw)
			if err != nil {
				return nil, fmt.Errorf("tickets %s: %s%s: %w", path, r.where(), idNote(r.raw), err)
			}
			keep(t)
			continue
		}
		page++
		for i, raw := range *pg.Tickets {
			t, err := decodeTicket(raw)
			if err != nil {
				return nil, fmt.Errorf("tickets %s: page %d (line %d): ticket %d%s: %w", path, page, r.line, i, idNote(raw), err)
			}
			keep(t)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// idNote names a bad ticket by id when it has one, which is what an operator
// searches Zendesk for.
func idNote(raw json.RawMessage) string {
	var v struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	if id, set, err := intOf("id", v.ID); err == nil && set {
		return fmt.Sprintf(" (id %d)", id)
	}
	return ""
}

func decodeTicket(raw json.RawMessage) (correlate.Ticket, error) {
	if err := objectOnly(raw); err != nil {
		return correlate.Ticket{}, err
	}
	var rt rawTicket
	if err := json.Unmarshal(raw, &rt); err != nil {
		return correlate.Ticket{}, typeErr(err)
	}
	var errs []error
	t := correlate.Ticket{
		Subject:     deref(rt.Subject),
		Description: deref(rt.Description),
		Priority:    deref(rt.Priority),
		Status:      deref(rt.Status),
		Tags:        rt.Tags,
	}
	id, set, err := intOf("id", rt.ID)
	switch {
	case err != nil:
		errs = append(errs, err)
	case !set:
		errs = append(errs, errors.New("id is required"))
	}
	t.ID = id
	if rt.CreatedAt == nil || strings.TrimSpace(*rt.CreatedAt) == "" {
		errs = append(errs, errors.New("created_at is required"))
	} else if t.CreatedAt, err = parseTime("created_at", *rt.CreatedAt); err != nil {
		errs = append(errs, err)
	}
	if t.OrganizationID, _, err = intOf("organization_id", rt.OrganizationID); err != nil {
		errs = append(errs, err)
	}
	if t.RequesterID, _, err = intOf("requester_id", rt.RequesterID); err != nil {
		errs = append(errs, err)
	}
	if t.Via, err = viaChannel(rt.Via); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return correlate.Ticket{}, joinErrs(errs)
	}
	return t, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// viaChannel keeps Zendesk's via.channel ("email", "web", "api"); a plain
// string is taken as the channel, for exports that already flattened it.
func viaChannel(raw json.RawMessage) (string, error) {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 || string(b) == "null" {
		return "", nil
	}
	switch b[0] {
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return "", fmt.Errorf("via: invalid string %s", shortJSON(b))
		}
		return s, nil
	case '{':
		var v struct {
			Channel json.RawMessage `json:"channel"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return "", fmt.Errorf("via: %w", typeErr(err))
		}
		return stringOf("via.channel", v.Channel)
	}
	return "", fmt.Errorf("via: expected an object or a string, got %s", shortJSON(b))
}
