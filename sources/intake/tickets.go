package intake

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/sources/file"
)

type ticketsResponse struct {
	Tickets []int64 `json:"tickets"`
}

// handleTickets takes a Zendesk ticket object, an array of them, or one or
// more incremental-export pages {"tickets":[…]}: what a script that pages
// through Zendesk would forward.
func (s *server) handleTickets() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		tickets, err := decodeTickets(body, s.now())
		if err != nil {
			s.reject(w, r, http.StatusBadRequest, err.Error())
			return
		}
		s.storeTickets(w, r, tickets)
	})
}

func (s *server) storeTickets(w http.ResponseWriter, r *http.Request, tickets []correlate.Ticket) {
	if len(tickets) > 0 {
		if err := s.cfg.Tickets.AddTickets(r.Context(), tickets); err != nil {
			s.storeFailed(w, r, fmt.Sprintf("store %d tickets", len(tickets)), err)
			return
		}
	}
	resp := ticketsResponse{Tickets: make([]int64, len(tickets))}
	for i, t := range tickets {
		resp.Tickets[i] = t.ID
	}
	s.log.Info("intake: tickets stored", slog.Int("count", len(tickets)), slog.String("path", r.URL.Path))
	writeJSON(w, http.StatusOK, resp)
}

// ticketRecord is one ticket of a body and where it was.
type ticketRecord struct {
	raw  json.RawMessage
	name func(idNote string) string
}

// decodeTickets validates every ticket of a body, with intake's limits
// (now bounds timestamps). An id seen twice is kept once, in its last form,
// as the file source does: an export lists a ticket again each time it
// changes.
func decodeTickets(body []byte, now time.Time) ([]correlate.Ticket, error) {
	items, array, err := splitBody(body)
	if err != nil {
		return nil, err
	}
	many := array || len(items) > 1
	var records []ticketRecord
	for _, it := range items {
		if !array {
			recs, isPage, err := pageTickets(it, many)
			if err != nil {
				return nil, err
			}
			if isPage {
				records = append(records, recs...)
				continue
			}
		}
		records = append(records, ticketRecord{raw: it.raw, name: func(id string) string { return where("ticket", it, many, id) }})
	}
	var (
		out      []correlate.Ticket
		byID     = map[int64]int{}
		problems []string
		bad      int
	)
	for _, rec := range records {
		t, err := decodeTicket(rec.raw, now)
		if err != nil {
			bad++
			if len(problems) < maxReported {
				problems = append(problems, fmt.Sprintf("%s: %v", rec.name(idNote(rec.raw)), err))
			}
			continue
		}
		if i, ok := byID[t.ID]; ok {
			out[i] = t
			continue
		}
		byID[t.ID] = len(out)
		out = append(out, t)
	}
	if bad > 0 {
		return nil, errors.New(summarize("tickets", bad, len(records), problems))
	}
	return out, nil
}

// decodeTicket reads one ticket as every ticket source does, then applies
// intake's limits. Invalid UTF-8 is looked for first, on the raw bytes,
// because decoding replaces it.
func decodeTicket(raw []byte, now time.Time) (correlate.Ticket, error) {
	if err := checkUTF8(raw); err != nil {
		return correlate.Ticket{}, err
	}
	t, err := file.DecodeTicket(raw)
	if err != nil {
		return correlate.Ticket{}, err
	}
	if err := checkTicket(t, now); err != nil {
		return correlate.Ticket{}, err
	}
	return t, nil
}

// pageTickets unpacks an incremental-export page. isPage is false when the
// record is not an object with a "tickets" key, that is, a ticket itself.
func pageTickets(it item, many bool) (recs []ticketRecord, isPage bool, err error) {
	if !isObject(it.raw) {
		return nil, false, nil
	}
	var pg struct {
		Tickets json.RawMessage `json:"tickets"`
	}
	if err := json.Unmarshal(it.raw, &pg); err != nil || pg.Tickets == nil {
		return nil, false, nil
	}
	prefix := ""
	if many {
		prefix = fmt.Sprintf("page %d (line %d): ", it.index, it.line)
	}
	var ts []json.RawMessage
	if err := json.Unmarshal(pg.Tickets, &ts); err != nil {
		return nil, true, fmt.Errorf("%stickets: expected an array, got %s", prefix, short(pg.Tickets))
	}
	for i, raw := range ts {
		recs = append(recs, ticketRecord{raw: raw, name: func(id string) string {
			if id != "" {
				return fmt.Sprintf("%stickets[%d] (%s)", prefix, i, id)
			}
			return fmt.Sprintf("%stickets[%d]", prefix, i)
		}})
	}
	return recs, true, nil
}
