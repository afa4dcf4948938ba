package store

import (
	"context"
	"slices"
	"testing"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/sources/zendesk"
)

// The Zendesk organization poller stores its customers here.
var _ zendesk.CustomerStore = (*Store)(nil)

func TestCustomersSurviveRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.ApplyCustomers(ctx, []correlate.Customer{
		{ID: "10001", Name: "Acme Corp", Tier: "enterprise", VIP: true},
		{ID: "10002", Name: "Globex", Tier: "pro"},
	}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyCustomers(ctx, []correlate.Customer{{ID: "10001", Name: "Acme Corp", Tier: "premium"}}, []string{"10002", "nope"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir)
	defer s.Close()
	got, err := s.Customers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != (correlate.Customer{ID: "10001", Name: "Acme Corp", Tier: "premium"}) {
		t.Fatalf("customers after restart: %+v", got)
	}
	removed, err := s.RemovedCustomers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{"10002", "nope"}) {
		t.Errorf("removed after restart: %q; want 10002 and nope", removed)
	}
	// Put back, it is no longer removed.
	if err := s.ApplyCustomers(ctx, []correlate.Customer{{ID: "10002", Name: "Globex"}}, nil); err != nil {
		t.Fatal(err)
	}
	if removed, err = s.RemovedCustomers(ctx); err != nil || !slices.Equal(removed, []string{"nope"}) {
		t.Errorf("removed after 10002 came back: %q, %v; want nope", removed, err)
	}
}
