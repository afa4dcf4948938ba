package simulate

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/culprithq/culprit/sources/customers"
)

func TestCustomersDirectory(t *testing.T) {
	f := newFleet(1)
	cs := f.directory(1)
	if len(cs) != numCustomers {
		t.Fatalf("%d customers, want %d", len(cs), numCustomers)
	}
	tiers := map[string]int{}
	names := map[string]bool{}
	for i, c := range cs {
		tiers[c.Tier]++
		if c.Name == "" || names[c.Name] {
			t.Errorf("customer %s: name %q empty or repeated", c.ID, c.Name)
		}
		names[c.Name] = true
		if c.ID != f.customers[i].org {
			t.Errorf("customer %d: id %s, want %s", i, c.ID, f.customers[i].org)
		}
	}
	if tiers["enterprise"] != enterpriseRanks || tiers["premium"] != premiumRanks-enterpriseRanks {
		t.Errorf("tiers %v", tiers)
	}
	// The single-customer shape picks among ranks 5–14: an enterprise customer.
	for _, c := range f.byRank[5:15] {
		if cs[c.idx].Tier != "enterprise" {
			t.Errorf("rank %d is %s, want enterprise", c.rank, cs[c.idx].Tier)
		}
	}
	again := Customers(1)
	for i := range cs {
		if cs[i] != again[i] {
			t.Fatalf("customer %d differs between runs of one seed: %+v vs %+v", i, cs[i], again[i])
		}
	}
}

func TestCustomersFileReadsBack(t *testing.T) {
	cs := Customers(3)
	p := filepath.Join(t.TempDir(), CustomersFile)
	s, err := customersCSV(cs)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := customers.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if got, ok := d.Customer(c.ID); !ok || got != c {
			t.Fatalf("read back %+v, want %+v", got, c)
		}
	}
}
