package file

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/culprithq/culprit/correlate"
)

type rawDeploy struct {
	ID          json.RawMessage `json:"id"`
	Service     string          `json:"service"`
	Version     json.RawMessage `json:"version"`
	Environment string          `json:"environment"`
	StartedAt   *string         `json:"started_at"`
	FinishedAt  *string         `json:"finished_at"`
	Author      string          `json:"author"`
	URL         string          `json:"url"`
	Description string          `json:"description"`
	Hosts       []rawHost       `json:"hosts"`
}

type rawHost struct {
	Name string  `json:"name"`
	At   *string `json:"at"`
}

// ReadDeploys reads deploy records from a JSON array or a sequence of JSON
// objects (NDJSON), gzipped or not. Every problem of a record is reported at
// once, so an operator fixes a bad export in one round; the first bad record
// stops the read, because a deploy file with holes would silently exonerate
// the missing deploys. Unknown fields are ignored so that CI systems can add
// their own. The result is sorted by StartedAt, then ID.
func ReadDeploys(path string) ([]correlate.Deploy, error) {
	s, err := openJSONStream("deploys", path)
	if err != nil {
		return nil, err
	}
	defer s.close()
	var out []correlate.Deploy
	for {
		r, err := s.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		d, err := decodeDeploy(r.raw)
		if err != nil {
			return nil, fmt.Errorf("deploys %s: %s: %w", path, r.where(), err)
		}
		out = append(out, d)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(out[j].StartedAt) {
			return out[i].StartedAt.Before(out[j].StartedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func decodeDeploy(raw json.RawMessage) (correlate.Deploy, error) {
	if err := objectOnly(raw); err != nil {
		return correlate.Deploy{}, err
	}
	var rd rawDeploy
	if err := json.Unmarshal(raw, &rd); err != nil {
		return correlate.Deploy{}, typeErr(err)
	}
	var errs []error
	d := correlate.Deploy{
		Service:     strings.TrimSpace(rd.Service),
		Environment: rd.Environment,
		Author:      rd.Author,
		URL:         rd.URL,
		Description: rd.Description,
	}
	var err error
	if d.ID, err = stringOf("id", rd.ID); err != nil {
		errs = append(errs, err)
	} else if strings.TrimSpace(d.ID) == "" {
		errs = append(errs, errors.New("id is required"))
	}
	if d.Version, err = stringOf("version", rd.Version); err != nil {
		errs = append(errs, err)
	}
	if d.Service == "" {
		errs = append(errs, errors.New("service is required"))
	}
	if rd.StartedAt == nil || strings.TrimSpace(*rd.StartedAt) == "" {
		errs = append(errs, errors.New("started_at is required"))
	} else if d.StartedAt, err = parseTime("started_at", *rd.StartedAt); err != nil {
		errs = append(errs, err)
	}
	if rd.FinishedAt != nil && strings.TrimSpace(*rd.FinishedAt) != "" {
		if d.FinishedAt, err = parseTime("finished_at", *rd.FinishedAt); err != nil {
			errs = append(errs, err)
		} else if !d.StartedAt.IsZero() && d.FinishedAt.Before(d.StartedAt) {
			errs = append(errs, fmt.Errorf("finished_at %s is before started_at %s", *rd.FinishedAt, *rd.StartedAt))
		}
	}
	for i, h := range rd.Hosts {
		hr := correlate.HostRollout{Name: strings.TrimSpace(h.Name)}
		if hr.Name == "" {
			errs = append(errs, fmt.Errorf("hosts[%d]: name is required", i))
		}
		if h.At == nil || strings.TrimSpace(*h.At) == "" {
			errs = append(errs, fmt.Errorf("hosts[%d]: at is required", i))
		} else if hr.At, err = parseTime(fmt.Sprintf("hosts[%d].at", i), *h.At); err != nil {
			errs = append(errs, err)
		}
		d.Hosts = append(d.Hosts, hr)
	}
	if len(errs) > 0 {
		return correlate.Deploy{}, joinErrs(errs)
	}
	return d, nil
}

// joinErrs is errors.Join on one line, which reads better after a
// "file: line N:" prefix than errors.Join's newlines.
func joinErrs(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}
