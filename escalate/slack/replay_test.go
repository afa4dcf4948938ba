package slack

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/escalate/slack/slackfake"
	"github.com/culprithq/culprit/escalate/store"
)

// caseVariants returns sig with one hex letter upper-cased, for each
// letter in it: the same signature bytes, spelled differently.
func caseVariants(sig string) []string {
	var out []string
	for i := len("v0="); i < len(sig); i++ {
		if c := sig[i]; c >= 'a' && c <= 'f' {
			out = append(out, sig[:i]+strings.ToUpper(string(c))+sig[i+1:])
		}
	}
	return out
}

// A valid request replayed with its signature's hex re-cased is the same
// request; and a replay after a restart is refused as well, because the
// guard is in the store.
func TestReplayGuardKeysOnSignatureBytesAndPersists(t *testing.T) {
	ctx := context.Background()
	now := friday
	clock := func() time.Time { return now }
	st, err := store.Open(ctx, t.TempDir(), clock)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v := newVerifier(testSecret, clock, st)
	body := []byte("command=%2Fcorrelate&text=page")
	h := slackfake.Sign(testSecret, friday, body)
	if err := v.verify(ctx, h, body); err != nil {
		t.Fatalf("first request: %v", err)
	}
	variants := caseVariants(h.Get(headerSignature))
	if len(variants) == 0 {
		t.Fatal("signature has no hex letters to re-case")
	}
	for _, sig := range variants {
		h2 := h.Clone()
		h2.Set(headerSignature, sig)
		if err := v.verify(ctx, h2, body); !errors.Is(err, errReplayed) {
			t.Fatalf("replay as %s: %v, want errReplayed", sig, err)
		}
	}
	// A restart forgets the memory set, not the store.
	now = friday.Add(time.Minute)
	restarted := newVerifier(testSecret, clock, st)
	if err := restarted.verify(ctx, h, body); !errors.Is(err, errReplayed) {
		t.Fatalf("replay after restart: %v, want errReplayed", err)
	}
	// A different request is still welcome.
	if err := restarted.verify(ctx, slackfake.Sign(testSecret, now, body), body); err != nil {
		t.Fatalf("fresh request after restart: %v", err)
	}
}

type brokenGuard struct{}

func (brokenGuard) FirstSeen(context.Context, string, string, time.Time) (bool, error) {
	return false, errors.New("disk I/O error")
}

// When the store cannot say whether a request was seen, it is refused:
// applying a "Page on-call" twice is worse than asking Slack to retry.
func TestReplayGuardFailureRefuses(t *testing.T) {
	v := newVerifier(testSecret, func() time.Time { return friday }, brokenGuard{})
	body := []byte("text=x")
	if err := v.verify(context.Background(), slackfake.Sign(testSecret, friday, body), body); !errors.Is(err, errReplayUnknown) {
		t.Fatalf("verify with a failing guard: %v, want errReplayUnknown", err)
	}
}
