package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/sources/file"
)

// maxReported bounds how many bad records one error response lists: enough
// to fix a systematic mistake, short enough to read.
const maxReported = 10

// deployResult echoes one stored deploy.
type deployResult struct {
	ID      string `json:"id"`
	Created bool   `json:"created"`
}

type deploysResponse struct {
	Deploys []deployResult `json:"deploys"`
}

// handleDeploys takes one deploy, an array, or NDJSON. It answers 201 when at
// least one deploy was new, 200 when all were merged into known ones.
func (s *server) handleDeploys() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		items, array, err := splitBody(body)
		if err != nil {
			s.reject(w, r, http.StatusBadRequest, err.Error())
			return
		}
		many := array || len(items) > 1
		deploys := make([]correlate.Deploy, 0, len(items))
		var problems []string
		bad := 0
		for _, it := range items {
			d, err := s.decodeDeploy(it.raw)
			if err != nil {
				bad++
				if len(problems) < maxReported {
					problems = append(problems, fmt.Sprintf("%s: %v", where("deploy", it, many, idNote(it.raw)), err))
				}
				continue
			}
			deploys = append(deploys, d)
		}
		if bad > 0 {
			s.reject(w, r, http.StatusBadRequest, summarize("deploys", bad, len(items), problems))
			return
		}
		s.storeDeploys(w, r, deploys)
	})
}

// decodeDeploy reads one deploy record as the file source does, then
// applies intake's limits: what a file holds is the operator's own, what is
// posted here may come from anywhere.
func (s *server) decodeDeploy(raw []byte) (correlate.Deploy, error) {
	if err := checkUTF8(raw); err != nil {
		return correlate.Deploy{}, err
	}
	d, err := file.DecodeDeploy(raw)
	if err != nil {
		return correlate.Deploy{}, err
	}
	if err := checkDeploy(d, s.now()); err != nil {
		return correlate.Deploy{}, err
	}
	return d, nil
}

// storeDeploys stores validated deploys and answers with their ids. A store
// failure part way leaves the earlier deploys stored; as AddDeploy merges by
// id, the sender's retry of the whole batch is safe.
func (s *server) storeDeploys(w http.ResponseWriter, r *http.Request, deploys []correlate.Deploy) {
	resp := deploysResponse{Deploys: make([]deployResult, 0, len(deploys))}
	anyCreated := false
	for _, d := range deploys {
		created, err := s.cfg.Deploys.AddDeploy(r.Context(), d)
		if err != nil {
			s.storeFailed(w, r, fmt.Sprintf("store deploy %q", d.ID), err)
			return
		}
		anyCreated = anyCreated || created
		resp.Deploys = append(resp.Deploys, deployResult{ID: d.ID, Created: created})
		if created && s.cfg.OnDeploy != nil {
			s.cfg.OnDeploy(d)
		}
	}
	s.log.Info("intake: deploys stored", slog.Int("count", len(deploys)), slog.String("path", r.URL.Path))
	code := http.StatusOK
	if anyCreated {
		code = http.StatusCreated
	}
	writeJSON(w, code, resp)
}

// storeFailed answers a store error without its text, which may name
// files or SQL, and logs it in full for the operator.
func (s *server) storeFailed(w http.ResponseWriter, r *http.Request, what string, err error) {
	code := http.StatusInternalServerError
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		code = http.StatusServiceUnavailable
	}
	s.log.Error("intake: "+what+" failed", slog.String("path", r.URL.Path), slog.Any("err", err))
	writeError(w, code, what+": internal error, retry later")
}

type progressResponse struct {
	ID    string `json:"id"`
	Hosts int    `json:"hosts"`
}

// handleProgress appends host rollout times to a known deploy: CD systems
// learn host by host when a version landed, long after the deploy started.
func (s *server) handleProgress() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimSpace(r.PathValue("id"))
		if id == "" {
			s.reject(w, r, http.StatusBadRequest, "deploy id is required in the path")
			return
		}
		var p problems
		if p.id("path deploy id", id); len(p) > 0 {
			s.reject(w, r, http.StatusBadRequest, p.err().Error())
			return
		}
		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		hosts, finished, err := decodeProgress(body, s.now())
		if err != nil {
			s.reject(w, r, http.StatusBadRequest, err.Error())
			return
		}
		if err := s.cfg.Deploys.AddProgress(r.Context(), id, hosts, finished); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				s.reject(w, r, http.StatusNotFound, fmt.Sprintf("deploy %q not found: post it to /api/v1/deploys first", id))
				return
			}
			s.storeFailed(w, r, fmt.Sprintf("store progress of deploy %q", id), err)
			return
		}
		writeJSON(w, http.StatusOK, progressResponse{ID: id, Hosts: len(hosts)})
	})
}

type rawProgress struct {
	Hosts      []json.RawMessage `json:"hosts"`
	FinishedAt *string           `json:"finished_at"`
}

type rawHost struct {
	Name *string `json:"name"`
	At   *string `json:"at"`
}

// decodeProgress validates a progress body whole, listing every problem;
// now bounds its timestamps.
func decodeProgress(body []byte, now time.Time) ([]correlate.HostRollout, time.Time, error) {
	items, array, err := splitBody(body)
	if err != nil {
		return nil, time.Time{}, err
	}
	if err := checkUTF8(body); err != nil {
		return nil, time.Time{}, err
	}
	if array {
		return nil, time.Time{}, errors.New(`expected one JSON object {"hosts":[{"name":…,"at":…}],"finished_at":…}, got an array`)
	}
	if len(items) != 1 || !isObject(items[0].raw) {
		return nil, time.Time{}, errors.New(`expected one JSON object {"hosts":[{"name":…,"at":…}],"finished_at":…}`)
	}
	var rp rawProgress
	if err := json.Unmarshal(items[0].raw, &rp); err != nil {
		return nil, time.Time{}, typeErr(err)
	}
	var errs []string
	var finished time.Time
	if rp.FinishedAt != nil && strings.TrimSpace(*rp.FinishedAt) != "" {
		if finished, err = parseTime("finished_at", *rp.FinishedAt); err != nil {
			errs = append(errs, err.Error())
		}
	}
	hosts := make([]correlate.HostRollout, 0, len(rp.Hosts))
	for i, raw := range rp.Hosts {
		field := fmt.Sprintf("hosts[%d]", i)
		if !isObject(raw) {
			errs = append(errs, fmt.Sprintf("%s: expected an object, got %s", field, short(raw)))
			continue
		}
		var rh rawHost
		if err := json.Unmarshal(raw, &rh); err != nil {
			errs = append(errs, fmt.Sprintf("%s.%v", field, typeErr(err)))
			continue
		}
		h := correlate.HostRollout{}
		if rh.Name != nil {
			h.Name = strings.TrimSpace(*rh.Name)
		}
		if h.Name == "" {
			errs = append(errs, field+".name is required")
		}
		if rh.At == nil || strings.TrimSpace(*rh.At) == "" {
			errs = append(errs, field+".at is required")
		} else if h.At, err = parseTime(field+".at", *rh.At); err != nil {
			errs = append(errs, err.Error())
		}
		hosts = append(hosts, h)
	}
	if len(rp.Hosts) == 0 && finished.IsZero() {
		errs = append(errs, "hosts or finished_at is required")
	}
	var p problems
	if !finished.IsZero() {
		p.time("finished_at", finished, now)
	}
	p.hosts(hosts, now)
	errs = append(errs, p...)
	if len(errs) > 0 {
		return nil, time.Time{}, errors.New(strings.Join(errs, "; "))
	}
	return hosts, finished, nil
}

// parseTime reads an RFC 3339 time, naming the field when it is not one.
func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 time (like 2026-11-20T14:31:00Z)", field, shortString(s))
	}
	return t.UTC(), nil
}

// where names a record in an error: "deploys[3] (line 4, id "dep-9")".
func where(kind string, it item, many bool, idNote string) string {
	var parts []string
	name := kind
	if many {
		name = fmt.Sprintf("%ss[%d]", kind, it.index)
		parts = append(parts, "line "+strconv.Itoa(it.line))
	}
	if idNote != "" {
		parts = append(parts, idNote)
	}
	if len(parts) == 0 {
		return name
	}
	return name + " (" + strings.Join(parts, ", ") + ")"
}

// summarize is the error of a batch with bad records: how many, then the
// first few.
func summarize(kind string, bad, total int, problems []string) string {
	msg := strings.Join(problems, "; ")
	if total > 1 {
		msg = fmt.Sprintf("%d of %d %s invalid, nothing stored: %s", bad, total, kind, msg)
	}
	if bad > len(problems) {
		msg += fmt.Sprintf("; and %d more", bad-len(problems))
	}
	return msg
}

// idNote names a bad record by its id when it has one: what an operator
// searches their CI or Zendesk for.
func idNote(raw json.RawMessage) string {
	var v struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	b := bytes.TrimSpace(v.ID)
	if len(b) == 0 || string(b) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(b, &s) == nil {
		if s = strings.TrimSpace(s); s != "" {
			return "id " + strconv.Quote(shortString(s))
		}
		return ""
	}
	if _, err := strconv.ParseFloat(string(b), 64); err == nil {
		return "id " + string(b)
	}
	return ""
}

func isObject(raw []byte) bool {
	b := bytes.TrimSpace(raw)
	return len(b) > 0 && b[0] == '{'
}

// short is a JSON excerpt for messages: enough to recognise, too short to
// echo a whole payload back.
func short(b []byte) string { return shortString(string(bytes.TrimSpace(b))) }

func shortString(s string) string {
	n := 0
	for i := range s {
		if n == 40 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}
