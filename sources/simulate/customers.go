package simulate

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/culprithq/culprit/correlate"
)

// CustomersFile is the customers directory a run writes beside its logs,
// in the CSV format of sources/customers.
const CustomersFile = "customers.csv"

// Tiers by traffic rank: the biggest customers are on the plans with the
// fastest service-level agreements, as in most hosting companies. The
// single-customer shape's customer is among the top 15 (ranks 5–14), so
// its one-customer incident is an enterprise customer's.
const (
	enterpriseRanks = 15
	premiumRanks    = 60
	proRanks        = 200
)

var (
	namePrefixes = []string{"Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Tyrell", "Cyberdyne",
		"Soylent", "Wonka", "Gringotts", "Oscorp", "Monarch", "Pied Piper", "Dunder", "Sterling", "Bluth", "Nakatomi",
		"Aperture", "Black Mesa", "Massive", "Prestige", "Wernham", "Kramerica", "Gekko", "Duff", "Virtucon", "Ollivander"}
	nameSuffixes = []string{"Corp", "Inc.", "Ltd", "Labs", "Group", "Studio", "Shop", "Media", "Systems", "Foods",
		"Travel", "Outdoor", "Health", "Games", "Books", "Partners", "Logistics", "Apparel", "Coffee", "Bikes",
		"Energy", "Insurance", "Records", "Pets", "Garden"}
	owners = []string{"dana.reyes@hosting.example", "sam.okafor@hosting.example", "lee.tanaka@hosting.example",
		"ana.petrov@hosting.example", "max.berg@hosting.example"}
)

// customers is the fleet's customer directory: a name, a tier by traffic
// rank, an account owner for the paying tiers, and VIP for a few. It draws
// from its own stream, so adding it shifted no traffic.
func (f *fleet) directory(seed int64) []correlate.Customer {
	r := newRand(seed, streamCustomers)
	// Every prefix–suffix pair once, in a random order: unique names
	// without numbers, as long as the fleet has fewer customers than pairs.
	pairs := r.Perm(len(namePrefixes) * len(nameSuffixes))
	out := make([]correlate.Customer, 0, len(f.customers))
	for i, c := range f.customers {
		k := pairs[i%len(pairs)]
		name := namePrefixes[k/len(nameSuffixes)] + " " + nameSuffixes[k%len(nameSuffixes)]
		if i >= len(pairs) {
			name += " " + strconv.Itoa(i/len(pairs)+1)
		}
		cu := correlate.Customer{ID: c.org, Name: name}
		switch {
		case c.rank < enterpriseRanks:
			cu.Tier = "enterprise"
		case c.rank < premiumRanks:
			cu.Tier = "premium"
		case c.rank < proRanks:
			cu.Tier = "pro"
		default:
			cu.Tier = "free"
		}
		if cu.Tier != "free" {
			cu.Owner = owners[r.IntN(len(owners))]
		}
		// A handful of VIPs outside the top tier: a partner, a reference
		// customer, a press darling.
		cu.VIP = cu.Tier != "enterprise" && r.Float64() < 0.01
		out = append(out, cu)
	}
	return out
}

// Customers is the directory of the fleet a seed builds: what a support
// team's CRM would say about the customers in the simulated logs.
func Customers(seed int64) []correlate.Customer {
	return newFleet(seed).directory(seed)
}

// WriteCustomers writes customers in the CSV format sources/customers
// reads.
func WriteCustomers(w io.Writer, cs []correlate.Customer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"organization.id", "name", "tier", "vip", "owner"}); err != nil {
		return fmt.Errorf("simulate: customers: %w", err)
	}
	for _, c := range cs {
		if err := cw.Write([]string{c.ID, c.Name, c.Tier, strconv.FormatBool(c.VIP), c.Owner}); err != nil {
			return fmt.Errorf("simulate: customers: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("simulate: customers: %w", err)
	}
	return nil
}

// customersCSV is WriteCustomers into a string.
func customersCSV(cs []correlate.Customer) (string, error) {
	var b strings.Builder
	err := WriteCustomers(&b, cs)
	return b.String(), err
}
