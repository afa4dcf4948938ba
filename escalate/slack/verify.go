package slack

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Slack's request-signing protocol (v0):
// https://api.slack.com/authentication/verifying-requests-from-slack
const (
	headerSignature = "X-Slack-Signature"
	headerTimestamp = "X-Slack-Request-Timestamp"
	// MaxSkew is how far a request's timestamp may be from our clock.
	// Slack recommends five minutes; it is also how long a captured
	// request could be replayed, which the replay set closes.
	MaxSkew = 5 * time.Minute
	// MaxBody bounds what is read before the signature is checked, so an
	// unauthenticated client cannot make us buffer gigabytes. Slack's
	// payloads are a few KB (interaction payloads carry the whole message,
	// up to about 100 KB).
	MaxBody = 1 << 20
	// replayCapacity bounds the replay set. Only signed requests enter it,
	// so it fills only as fast as Slack sends: ten thousand commands in
	// five minutes is far beyond any workspace.
	replayCapacity = 10000
)

// errVerify values are the short reasons sent back with a 401. They say
// what was wrong, never what would have been right.
var (
	errMissingHeaders = errors.New("missing slack signature headers")
	errBadTimestamp   = errors.New("malformed request timestamp")
	errExpired        = errors.New("request timestamp outside the 5 minute window")
	errBadSignature   = errors.New("invalid signature")
	errReplayed       = errors.New("replayed request")
	errReplayUnknown  = errors.New("replay guard unavailable")
	errTooLarge       = errors.New("request body too large")
	errNoSecret       = errors.New("slack over HTTP is not configured (no signing secret)")
)

// verifier checks Slack's v0 signatures against an injected clock.
//
// slack-go's SecretsVerifier checks the timestamp with time.Since, which
// tests cannot control and which would make replay expiry disagree with
// the window check, so the window is checked here with now(), and the
// signature is the same HMAC-SHA256 over "v0:<ts>:<body>", compared with
// hmac.Equal (constant time).
type verifier struct {
	secret  []byte
	now     func() time.Time
	replays ReplayGuard // nil: memory only

	mu   sync.Mutex
	seen map[string]time.Time // signature -> request timestamp
	// order is seen's keys in insertion order, for eviction at capacity.
	order []string
}

// ReplayGuard is durable memory of verified requests. FirstSeen records
// key for source until the given time and reports whether it was new (or
// its earlier record had expired). An error means nothing is known; the
// request is then refused rather than risk applying it twice.
type ReplayGuard interface {
	FirstSeen(ctx context.Context, source, key string, until time.Time) (bool, error)
}

// ReplaySource is the source name Slack requests are recorded under.
const ReplaySource = "slack"

func newVerifier(secret string, now func() time.Time, replays ReplayGuard) *verifier {
	return &verifier{secret: []byte(secret), now: now, replays: replays, seen: map[string]time.Time{}}
}

// readAndVerify reads the whole (bounded) body and verifies it. The body
// is returned only when it is authentic and fresh, so nothing downstream
// ever sees an unverified byte.
func (v *verifier) readAndVerify(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(body) > MaxBody {
		return nil, errTooLarge
	}
	return body, v.verify(r.Context(), r.Header, body)
}

func (v *verifier) verify(ctx context.Context, h http.Header, body []byte) error {
	if len(v.secret) == 0 {
		// Socket Mode needs no signing secret; without one, an HMAC
		// with an empty key would let anyone sign, so HTTP refuses all.
		return errNoSecret
	}
	sig, tsRaw := h.Get(headerSignature), h.Get(headerTimestamp)
	if sig == "" || tsRaw == "" {
		return errMissingHeaders
	}
	ts, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return errBadTimestamp
	}
	now := v.now()
	at := time.Unix(ts, 0)
	if d := now.Sub(at); d > MaxSkew || d < -MaxSkew {
		return errExpired
	}
	hexSig, ok := strings.CutPrefix(sig, "v0=")
	if !ok {
		return errBadSignature
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return errBadSignature
	}
	mac := hmac.New(sha256.New, v.secret)
	mac.Write([]byte("v0:" + tsRaw + ":"))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return errBadSignature
	}
	// The key is the signature's bytes, not its text: hex is
	// case-insensitive, so "v0=ab…" and "v0=AB…" are the same signature
	// and must be the same replay.
	key := hex.EncodeToString(got)
	if !v.remember(key, at, now) {
		return errReplayed
	}
	if v.replays != nil {
		first, err := v.replays.FirstSeen(ctx, ReplaySource, key, at.Add(MaxSkew))
		if err != nil {
			return fmt.Errorf("%w: %v", errReplayUnknown, err)
		}
		if !first {
			return errReplayed
		}
	}
	return nil
}

// remember records a verified request and reports whether it is new. An
// entry is kept while its timestamp is inside the window: after that the
// window check rejects the request anyway.
func (v *verifier) remember(key string, at, now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, dup := v.seen[key]; dup {
		return false
	}
	// Drop expired entries from the front; insertion order is nearly
	// timestamp order, and an entry left behind a fresher one only
	// lingers until that one goes.
	drop := 0
	for drop < len(v.order) && now.Sub(v.seen[v.order[drop]]) > MaxSkew {
		delete(v.seen, v.order[drop])
		drop++
	}
	if len(v.order)-drop >= replayCapacity {
		delete(v.seen, v.order[drop])
		drop++
	}
	v.order = append(v.order[drop:], key)
	v.seen[key] = at
	return true
}
