package intake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// githubEvent is the part of GitHub's deployment_status webhook payload that
// culprit reads (docs.github.com, "Webhook events and payloads",
// deployment_status).
type githubEvent struct {
	DeploymentStatus *struct {
		State       string `json:"state"`
		TargetURL   string `json:"target_url"`
		LogURL      string `json:"log_url"`
		Description string `json:"description"`
		Environment string `json:"environment"`
		CreatedAt   string `json:"created_at"`
	} `json:"deployment_status"`
	Deployment *struct {
		ID          int64           `json:"id"`
		SHA         string          `json:"sha"`
		Environment string          `json:"environment"`
		Description string          `json:"description"`
		Payload     json.RawMessage `json:"payload"`
		Creator     *struct {
			Login string `json:"login"`
		} `json:"creator"`
		CreatedAt string `json:"created_at"`
	} `json:"deployment"`
	Repository *struct {
		Name    string `json:"name"`
		HTMLURL string `json:"html_url"`
	} `json:"repository"`
}

// finishedStates are the deployment states after which nothing more rolls
// out.
var finishedStates = map[string]bool{"success": true, "failure": true, "error": true, "inactive": true}

type statusResponse struct {
	Status string `json:"status"`
	Event  string `json:"event,omitempty"`
}

// handleGitHub turns GitHub deployment_status events into deploys. Every
// status of a deployment maps to the same deploy id, so the first status
// creates it and later ones merge into it (setting finished_at).
func (s *server) handleGitHub() http.Handler {
	secret := []byte(s.cfg.GitHubSecret)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(secret) == 0 {
			writeError(w, http.StatusNotFound, "github webhook is disabled: no github secret is configured")
			return
		}
		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		if msg := checkGitHubSignature(secret, body, r.Header.Get("X-Hub-Signature-256")); msg != "" {
			s.reject(w, r, http.StatusUnauthorized, msg)
			return
		}
		switch event := r.Header.Get("X-GitHub-Event"); event {
		case "deployment_status":
		case "ping":
			writeJSON(w, http.StatusOK, statusResponse{Status: "pong"})
			return
		default:
			writeJSON(w, http.StatusAccepted, statusResponse{Status: "ignored", Event: event})
			return
		}
		delivery := strings.TrimSpace(r.Header.Get("X-GitHub-Delivery"))
		if delivery == "" {
			s.reject(w, r, http.StatusBadRequest, "missing X-GitHub-Delivery header")
			return
		}
		// The delivery id is stored by the replay guard: a GUID from
		// GitHub, so anything long or with control characters is not one.
		var p problems
		if p.id("X-GitHub-Delivery header", delivery); len(p) > 0 {
			s.reject(w, r, http.StatusBadRequest, p.err().Error())
			return
		}
		body, err := githubJSON(r.Header.Get("Content-Type"), body)
		if err != nil {
			s.reject(w, r, http.StatusBadRequest, err.Error())
			return
		}
		d, err := decodeGitHubDeploy(body, s.now())
		if err != nil {
			s.reject(w, r, http.StatusBadRequest, err.Error())
			return
		}
		// The delivery is recorded before the deploy is stored: a replay must
		// store nothing. The price is that a store failure after this point
		// makes GitHub's redelivery look like a replay; the deployment's next
		// status carries the whole deployment again.
		first, err := s.cfg.Deliveries.FirstDelivery(r.Context(), "github", delivery)
		if err != nil {
			s.storeFailed(w, r, "record github delivery", err)
			return
		}
		// X-GitHub-Delivery is not signed: a captured delivery replayed
		// under a new id still carries its signature. That is recorded too,
		// by its bytes (lower-case hex of the verified value), so re-casing
		// the hex is the same replay.
		sig := strings.ToLower(strings.TrimPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256="))
		firstSig, err := s.cfg.Deliveries.FirstDelivery(r.Context(), "github-signature", sig)
		if err != nil {
			s.storeFailed(w, r, "record github delivery", err)
			return
		}
		if !first || !firstSig {
			s.log.Info("intake: duplicate github delivery ignored", slog.String("delivery", delivery))
			writeJSON(w, http.StatusOK, statusResponse{Status: "duplicate delivery"})
			return
		}
		s.storeDeploys(w, r, []correlate.Deploy{d})
	})
}

// githubJSON returns the event's JSON from a verified body. GitHub sends
// application/json, or by default application/x-www-form-urlencoded with
// the JSON in the form field "payload"; the signature covers the raw form
// body, so the form is decoded only after it is checked.
func githubJSON(contentType string, body []byte) ([]byte, error) {
	ct, _, _ := mime.ParseMediaType(contentType)
	if ct != "application/x-www-form-urlencoded" {
		return body, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("form body: %v", err)
	}
	p, ok := form["payload"]
	if !ok || len(p) != 1 {
		return nil, errors.New(`form body must hold exactly one "payload" field with the event's JSON`)
	}
	return []byte(p[0]), nil
}

// checkGitHubSignature verifies X-Hub-Signature-256 over the raw body and
// says what is wrong, or "" when it is right. The message never includes
// the expected value.
func checkGitHubSignature(secret, body []byte, header string) string {
	if header == "" {
		return "missing X-Hub-Signature-256 header"
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return `X-Hub-Signature-256 must start with "sha256="`
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return "X-Hub-Signature-256 is not hex"
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), got) {
		return "X-Hub-Signature-256 does not match the body: check the webhook secret"
	}
	return ""
}

// decodeGitHubDeploy maps a deployment_status payload to a deploy:
//
//   - ID "github-<deployment.id>", so every status of one deployment lands
//     on one deploy;
//   - Service from deployment.payload.service, else repository.name;
//   - Version from deployment.payload.version, else deployment.sha; never
//     deployment.ref, which in real deliveries is the branch ("master") and
//     would make every deploy of a service the same "version", so that the
//     version split could never match service.version in the logs;
//   - URL from deployment_status.target_url, else log_url, else the
//     repository's html_url;
//   - StartedAt = deployment.created_at; a finished state (success,
//     failure, error, inactive) sets FinishedAt = deployment_status.created_at.
//
// now bounds the timestamps, as for every posted deploy.
func decodeGitHubDeploy(body []byte, now time.Time) (correlate.Deploy, error) {
	if err := checkUTF8(body); err != nil {
		return correlate.Deploy{}, err
	}
	var ev githubEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		if _, ok := errors.AsType[*json.SyntaxError](err); ok {
			return correlate.Deploy{}, jsonErr(body, 0, err)
		}
		return correlate.Deploy{}, typeErr(err)
	}
	if ev.Deployment == nil || ev.DeploymentStatus == nil {
		return correlate.Deploy{}, errors.New("deployment and deployment_status are required in a deployment_status event")
	}
	dep, st := ev.Deployment, ev.DeploymentStatus
	var errs []string
	d := correlate.Deploy{
		Environment: dep.Environment,
		Description: dep.Description,
	}
	if d.Environment == "" {
		d.Environment = st.Environment
	}
	if d.Description == "" {
		d.Description = st.Description
	}
	if dep.ID <= 0 {
		errs = append(errs, "deployment.id is required")
	}
	d.ID = "github-" + strconv.FormatInt(dep.ID, 10)
	service, version := deploymentPayload(dep.Payload)
	d.Service = service
	if d.Service == "" && ev.Repository != nil {
		d.Service = ev.Repository.Name
	}
	if d.Service == "" {
		errs = append(errs, "deployment.payload.service or repository.name is required")
	}
	d.Version = firstNonEmpty(version, dep.SHA)
	d.URL = st.TargetURL
	if d.URL == "" {
		d.URL = st.LogURL
	}
	if d.URL == "" && ev.Repository != nil {
		d.URL = ev.Repository.HTMLURL
	}
	if dep.Creator != nil {
		d.Author = dep.Creator.Login
	}
	var err error
	if strings.TrimSpace(dep.CreatedAt) == "" {
		errs = append(errs, "deployment.created_at is required")
	} else if d.StartedAt, err = parseTime("deployment.created_at", dep.CreatedAt); err != nil {
		errs = append(errs, err.Error())
	}
	if finishedStates[st.State] {
		var fin time.Time
		switch {
		case strings.TrimSpace(st.CreatedAt) == "":
			errs = append(errs, "deployment_status.created_at is required for state "+strconv.Quote(st.State))
		default:
			if fin, err = parseTime("deployment_status.created_at", st.CreatedAt); err != nil {
				errs = append(errs, err.Error())
			}
		}
		// A status is never earlier than its deployment; clamp clock skew
		// rather than store a rollout that ends before it starts.
		if fin.Before(d.StartedAt) {
			fin = d.StartedAt
		}
		d.FinishedAt = fin
	}
	if len(errs) > 0 {
		return correlate.Deploy{}, errors.New(strings.Join(errs, "; "))
	}
	if err := checkDeploy(d, now); err != nil {
		return correlate.Deploy{}, fmt.Errorf("deployment: %w", err)
	}
	return d, nil
}

// deploymentPayload reads service and version from deployment.payload, which
// GitHub passes through as the deployer sent it: an object, or a string that
// may hold JSON.
func deploymentPayload(raw json.RawMessage) (service, version string) {
	b := bytes.TrimSpace(raw)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if json.Unmarshal(b, &s) != nil {
			return "", ""
		}
		b = bytes.TrimSpace([]byte(s))
	}
	if len(b) == 0 || b[0] != '{' {
		return "", ""
	}
	var p struct {
		Service json.RawMessage `json:"service"`
		Version json.RawMessage `json:"version"`
	}
	if json.Unmarshal(b, &p) != nil {
		return "", ""
	}
	return scalarText(p.Service), scalarText(p.Version)
}

// scalarText is a JSON string's value or a number's text; "" otherwise.
func scalarText(raw json.RawMessage) string {
	b := bytes.TrimSpace(raw)
	var s string
	if json.Unmarshal(b, &s) == nil {
		return strings.TrimSpace(s)
	}
	if _, err := strconv.ParseFloat(string(b), 64); err == nil {
		return string(b)
	}
	return ""
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}
