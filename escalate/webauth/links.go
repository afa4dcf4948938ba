// Package webauth decides who may read culprit's evidence over HTTP: signed,
// expiring links for the chart images that PagerDuty, Slack and a
// responder's phone fetch from the public listener, and, for the private
// listener, an OpenID Connect login or an authenticating proxy's headers.
//
// Nothing here knows about incidents: it wraps handlers, so the routes stay
// in one place (cmd/culprit) and each rule can be tested on its own.
package webauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// MinSecret is the shortest secret accepted for signing links and
// sessions: an HMAC key shorter than its hash's output only makes it
// weaker.
const MinSecret = 32

// Signer makes and checks signed, expiring links. A link is the path with
// ?exp=UNIX&sig=MAC, where MAC is HMAC-SHA256 over the path and the expiry:
// it names one file until one moment, so a link in a PagerDuty incident or
// a Slack post opens without a login while nobody can guess another
// incident's chart, and a leaked link stops working on its own.
type Signer struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// NewSigner signs with secret (at least MinSecret bytes) links valid for
// ttl. now is the clock; nil means time.Now.
func NewSigner(secret []byte, ttl time.Duration, now func() time.Time) (*Signer, error) {
	if len(secret) < MinSecret {
		return nil, fmt.Errorf("link signer: secret shorter than %d bytes", MinSecret)
	}
	if ttl <= 0 {
		return nil, errors.New("link signer: ttl must be positive")
	}
	if now == nil {
		now = time.Now
	}
	return &Signer{key: secret, ttl: ttl, now: now}, nil
}

// Sign returns path with the query that makes it valid until now + ttl.
// path is the URL path as sent, already escaped.
func (s *Signer) Sign(path string) string {
	exp := strconv.FormatInt(s.now().Add(s.ttl).Unix(), 10)
	sig := base64.RawURLEncoding.EncodeToString(s.mac(path, exp))
	return path + "?" + url.Values{"exp": {exp}, "sig": {sig}}.Encode()
}

func (s *Signer) mac(path, exp string) []byte {
	m := hmac.New(sha256.New, s.key)
	// The newline cannot occur in a path, so no path/expiry pair can be
	// made to sign as another.
	m.Write([]byte(path + "\n" + exp))
	return m.Sum(nil)
}

// ErrNoSignature means the request carries no signature at all.
var ErrNoSignature = errors.New("no link signature")

// Check verifies r's signature for its own path. The comparison is in
// constant time, so a forger learns nothing from how long a refusal takes.
func (s *Signer) Check(r *http.Request) error {
	q := r.URL.Query()
	exps, sigs := q["exp"], q["sig"]
	if len(exps) == 0 && len(sigs) == 0 {
		return ErrNoSignature
	}
	if len(exps) != 1 || len(sigs) != 1 {
		return errors.New("link needs exactly one exp and one sig")
	}
	exp, err := strconv.ParseInt(exps[0], 10, 64)
	if err != nil {
		return errors.New("link expiry is not a number")
	}
	got, err := base64.RawURLEncoding.DecodeString(sigs[0])
	if err != nil {
		return errors.New("link signature is not base64url")
	}
	if !hmac.Equal(got, s.mac(r.URL.EscapedPath(), exps[0])) {
		return errors.New("link signature does not match")
	}
	if !s.now().Before(time.Unix(exp, 0)) {
		return errors.New("link expired")
	}
	return nil
}

// Require serves next only for a validly signed request. With no
// signature the answer is 404, as for a path that does not exist, so the
// public listener does not even say which incidents exist; a bad or
// expired one is 403, so that whoever opens an old link learns why.
// Neither reaches next, so nothing is rendered.
func (s *Signer) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch err := s.Check(r); {
		case errors.Is(err, ErrNoSignature):
			http.NotFound(w, r)
		case err != nil:
			http.Error(w, "forbidden: "+err.Error(), http.StatusForbidden)
		default:
			next.ServeHTTP(w, r)
		}
	})
}
