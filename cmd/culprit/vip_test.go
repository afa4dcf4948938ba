package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/escalate/pagerduty"
	"github.com/culprithq/culprit/escalate/pagerduty/pdfake"
	"github.com/culprithq/culprit/rules"
	"github.com/culprithq/culprit/sources/simulate"
)

// writeCustomers writes the simulated fleet's customers file, as a CRM
// export would be, and returns its path.
func writeCustomers(tb testing.TB, seed int64) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), simulate.CustomersFile)
	f, err := os.Create(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := simulate.WriteCustomers(f, simulate.Customers(seed)); err != nil {
		tb.Fatal(err)
	}
	return p
}

// 32-character integration keys, as the PagerDuty fake requires.
const (
	infraKey   = "1nfra000000000000000000000000000"
	supportKey = "5upp0rt0000000000000000000000000"
)

// vipConfig pages infra for broad problems and the support on-call for a
// problem confined to one enterprise or VIP customer.
const vipConfig = `
services:
  - name: edge-router
evaluation:
  interval: 1m
  lookback: 60m
customers:
  file: %s
routes:
  - name: vip-support
    customers: {tiers: [enterprise], vip: true, max_customers: 1}
    action: page
    min_severity: notify
    routing_key: {env: SUPPORT_KEY}
  - name: infra
    action: page
pagerduty:
  routing_key: {env: INFRA_KEY}
`

// TestBacktestVIPCustomerPagesSupport is the acceptance test of the VIP
// route: the simulator's one-customer incident (an enterprise customer's
// broken certificate) is replayed as the daemon would see it, and what it
// queued is delivered to the PagerDuty fake exactly as serve delivers
// it. It must page the support on-call's key, and never infra's.
func TestBacktestVIPCustomerPagesSupport(t *testing.T) {
	f := backtestFiles(t, simulate.ShapeSingleCustomer)
	p := filepath.Join(t.TempDir(), "culprit.yml")
	if err := os.WriteFile(p, []byte(fmt.Sprintf(vipConfig, writeCustomers(t, backtestSim(simulate.ShapeSingleCustomer).Seed))), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := rules.LoadWith(p, func(k string) string {
		return map[string]string{"SUPPORT_KEY": supportKey, "INFRA_KEY": infraKey}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	from, to := backtestRange()
	rep, err := backtest(context.Background(), &cfg, backtestInput{logs: filepath.Join(f.dir, simulate.LogsFile),
		deploys: filepath.Join(f.dir, simulate.DeploysFile), tickets: filepath.Join(f.dir, simulate.TicketsFile), from: from, to: to})
	if err != nil {
		t.Fatal(err)
	}
	fake := pdfake.New(t)
	n, err := pagerduty.New(pagerduty.Config{URL: fake.URL()})
	if err != nil {
		t.Fatal(err)
	}
	d := &pagerduty.Deliverer{Notifier: n, RoutingKey: cfg.RoutingKey, RouteKey: cfg.RouteKey}
	ourKeys := map[string]bool{}
	for _, m := range rep.Messages {
		if m.Channel != string(escalate.ChannelPagerDuty) {
			continue
		}
		in := m.queued
		body, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Deliver(context.Background(), escalate.Message{Channel: escalate.ChannelPagerDuty, Action: m.Action,
			IncidentID: m.IncidentID, Key: m.Key, Service: m.Service, Body: body}); err != nil {
			t.Fatalf("deliver %s of %s: %v", m.Action, m.IncidentID, err)
		}
		if in.Finding == nil || !strings.Contains(in.Finding.Signature, f.truth.MessageContains) {
			continue
		}
		ourKeys[m.Key] = true
		if in.Route != "vip-support" {
			t.Errorf("the one-customer incident was routed by %q (%s), want vip-support", in.Route, in.Why)
		}
		if c := in.Finding.Customers; c == nil || len(c.Named) == 0 || c.Named[0].ID != f.truth.Value || c.Named[0].Tier != "enterprise" {
			t.Errorf("the page does not name the enterprise customer %s: %+v", f.truth.Value, in.Finding.Customers)
		}
	}
	if len(ourKeys) == 0 {
		t.Fatalf("the one-customer incident (%q on organization.id=%s) was never paged; messages: %+v", f.truth.MessageContains, f.truth.Value, rep.Messages)
	}
	triggers := 0
	for _, ev := range fake.Events() {
		if ev.Alert == nil || !ourKeys[ev.DedupKey] {
			continue
		}
		if ev.Alert.Action == "trigger" {
			triggers++
		}
		if ev.Alert.RoutingKey != supportKey {
			t.Errorf("the one-customer incident's %s went with key %s, want the support on-call's %s (never infra's %s)",
				ev.Alert.Action, ev.Alert.RoutingKey, supportKey, infraKey)
		}
	}
	if triggers != 1 {
		t.Errorf("%d triggers of the one-customer incident reached PagerDuty, want 1", triggers)
	}
	if rej := fake.Rejected(); len(rej) > 0 {
		t.Fatalf("PagerDuty fake rejected: %v", rej)
	}
}
