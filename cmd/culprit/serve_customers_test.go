package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/rules"
)

// TestServeCustomers: the daemon knows customers from customers.file and
// from Zendesk organizations, which override the file, and still knows
// the synced ones, and forgets the deleted ones the file lists, after a
// restart, before its first poll.
func TestServeCustomers(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 20, 16, 30, 0, 0, time.UTC)
	polls := 0
	zd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v2/incremental/organizations" {
			http.NotFound(w, r)
			return
		}
		polls++
		fmt.Fprintf(w, `{"count":2,"end_of_stream":true,"end_time":%d,"organizations":[
			{"id":1,"external_id":"10001","name":"Acme Corp","tags":["vip"],"organization_fields":{"tier":"Enterprise"}},
			{"id":2,"external_id":"10002","name":"Globex","tags":[],"organization_fields":{"tier":"pro"},"deleted_at":"2026-11-19T00:00:00Z"}]}`,
			now.Add(-time.Hour).Unix())
	}))
	defer zd.Close()
	dir := t.TempDir()
	custs := filepath.Join(t.TempDir(), "customers.csv")
	if err := os.WriteFile(custs, []byte("organization.id,name,tier\n10001,Acme (old name),pro\n10002,Globex,pro\n10003,Initech,premium\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	y := fmt.Sprintf(`
sources:
  elasticsearch:
    urls: [http://127.0.0.1:1]
    index: logs-*
intake:
  listen: "127.0.0.1:0"
  token: intake-token-intake-token
zendesk:
  url: %s
  email: bot@acme.com
  token: zd-token
customers:
  file: %s
  zendesk: {enabled: true}
store:
  dir: %s
`, zd.URL, custs, dir)
	p := filepath.Join(t.TempDir(), "culprit.yml")
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func() *server {
		t.Helper()
		cfg, err := rules.LoadWith(p, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		s, err := assemble(ctx, &cfg, func() time.Time { return now }, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := start()
	if c, _ := s.customers.Customer("10001"); c.Name != "Acme (old name)" {
		t.Fatalf("from the file: %+v", c)
	}
	if s.orgs == nil {
		t.Fatal("customers.zendesk.enabled started no organization sync")
	}
	if _, err := s.orgs.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	want := correlate.Customer{ID: "10001", Name: "Acme Corp", Tier: "enterprise", VIP: true}
	check := func(when string) {
		t.Helper()
		if c, _ := s.customers.Customer("10001"); c != want {
			t.Errorf("%s: 10001 = %+v, want %+v", when, c, want)
		}
		if _, ok := s.customers.Customer("10002"); ok {
			t.Errorf("%s: the deleted organization is still known", when)
		}
		if c, _ := s.customers.Customer("10003"); c.Name != "Initech" {
			t.Errorf("%s: the file's other customer is lost: %+v", when, c)
		}
	}
	check("after the sync")
	s.Close()
	s = start()
	defer s.Close()
	// The file still lists 10002; Zendesk's deletion is newer.
	check("after a restart, before any poll")
	if polls != 1 {
		t.Errorf("%d polls, want 1", polls)
	}
}
