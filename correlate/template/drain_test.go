package template

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestGroup(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		opt  Options
		want []Cluster
	}{
		{
			// One differing word is what tells two events apart ("VM
			// Resumed" and "VM Started"), so a slot of two words splits.
			name: "word slot with few values splits",
			in: []string{
				"function invocation failed: fn-<*> timed out after <*>ms on provider aws",
				"function invocation failed: fn-<*> timed out after <*>ms on provider gcp",
			},
			want: []Cluster{
				{
					Template: "function invocation failed: fn-<*> timed out after <*>ms on provider aws",
					Members:  []string{"function invocation failed: fn-<*> timed out after <*>ms on provider aws"},
				},
				{
					Template: "function invocation failed: fn-<*> timed out after <*>ms on provider gcp",
					Members:  []string{"function invocation failed: fn-<*> timed out after <*>ms on provider gcp"},
				},
			},
		},
		{
			// More distinct words than maxWordValues make it a free-text
			// slot, such as a user or table name.
			name: "word slot with many values generalised",
			in: []string{
				"timed out on provider aws", "timed out on provider azure", "timed out on provider do",
				"timed out on provider gcp", "timed out on provider hetzner",
			},
			want: []Cluster{{
				Template: "timed out on provider <*>",
				Members: []string{
					"timed out on provider aws", "timed out on provider azure", "timed out on provider do",
					"timed out on provider gcp", "timed out on provider hetzner",
				},
			}},
		},
		{
			// A bare value in any member makes the slot a value.
			name: "slot with a bare value generalised",
			in:   []string{"connection from <*> () at <*>", "connection from <*> <*> at <*>"},
			want: []Cluster{{
				Template: "connection from <*> <*> at <*>",
				Members:  []string{"connection from <*> () at <*>", "connection from <*> <*> at <*>"},
			}},
		},
		{
			// A word and a few partly masked names are names too.
			name: "slot of a word and a partly masked word splits",
			in:   []string{"<*> open through proxy <*> HTTPS", "<*> open through proxy <*> SOCKS<*>"},
			want: []Cluster{
				{Template: "<*> open through proxy <*> HTTPS", Members: []string{"<*> open through proxy <*> HTTPS"}},
				{Template: "<*> open through proxy <*> SOCKS<*>", Members: []string{"<*> open through proxy <*> SOCKS<*>"}},
			},
		},
		{
			// Many shapes are host names, however much of them is a word.
			name: "slot of many partly masked words generalised",
			in: []string{
				"connection from <*> () at <*>", "connection from <*> (a-<*>.example.net) at <*>",
				"connection from <*> (b<*>.example.org) at <*>", "connection from <*> (c.<*>.example.com) at <*>",
				"connection from <*> (dsl-<*>.example.net) at <*>",
			},
			want: []Cluster{{
				Template: "connection from <*> <*> at <*>",
				Members: []string{
					"connection from <*> () at <*>", "connection from <*> (a-<*>.example.net) at <*>",
					"connection from <*> (b<*>.example.org) at <*>", "connection from <*> (c.<*>.example.com) at <*>",
					"connection from <*> (dsl-<*>.example.net) at <*>",
				},
			}},
		},
		{
			// The values of one event can take a varying number of
			// tokens; what is left over after aligning is values and their
			// units, so the two lengths are one signature.
			name: "values of varying length joined",
			in: []string{
				"<*> close, <*> bytes sent, lifetime <*>",
				"<*> close, <*> bytes (<*> KB) sent, lifetime <<*> sec",
			},
			want: []Cluster{{
				Template: "<*> close, <*> bytes <*><*> sent, lifetime <*> <*><*>",
				Members: []string{
					"<*> close, <*> bytes (<*> KB) sent, lifetime <<*> sec",
					"<*> close, <*> bytes sent, lifetime <*>",
				},
			}},
		},
		{
			// Left-over words that are not units keep two events apart.
			name: "left-over words keep lengths apart",
			in: []string{
				"Failed password for <*> from <*> port <*>",
				"Failed password for invalid user <*> from <*> port <*>",
				"authentication failure; rhost=<*>",
				"authentication failure; rhost=<*> user=root",
			},
			want: []Cluster{
				{Template: "Failed password for <*> from <*> port <*>", Members: []string{"Failed password for <*> from <*> port <*>"}},
				{
					Template: "Failed password for invalid user <*> from <*> port <*>",
					Members:  []string{"Failed password for invalid user <*> from <*> port <*>"},
				},
				{Template: "authentication failure; rhost=<*>", Members: []string{"authentication failure; rhost=<*>"}},
				{Template: "authentication failure; rhost=<*> user=root", Members: []string{"authentication failure; rhost=<*> user=root"}},
			},
		},
		{
			// Only values in common is not enough to join.
			name: "lengths sharing no word stay apart",
			in:   []string{"<*>", "<*> <*>"},
			want: []Cluster{
				{Template: "<*>", Members: []string{"<*>"}},
				{Template: "<*> <*>", Members: []string{"<*> <*>"}},
			},
		},
		{
			// A bare placeholder neither agrees nor disagrees: the three
			// words both have agree, though only three of eight tokens
			// are equal words (below 0.4 as Drain counts).
			name: "bare placeholders do not count against similarity",
			in:   []string{"login from <*> at <*> <*> <*> <*>", "login from <*> at noon <*> <*> <*>"},
			want: []Cluster{{
				Template: "login from <*> at <*> <*> <*> <*>",
				Members:  []string{"login from <*> at <*> <*> <*> <*>", "login from <*> at noon <*> <*> <*>"},
			}},
		},
		{
			name: "different token counts never merge",
			in:   []string{"connection reset by peer", "upstream connect error"},
			want: []Cluster{
				{Template: "connection reset by peer", Members: []string{"connection reset by peer"}},
				{Template: "upstream connect error", Members: []string{"upstream connect error"}},
			},
		},
		{
			name: "same length but too different",
			in:   []string{"connection reset by peer", "upstream connect error again"},
			want: []Cluster{
				{Template: "connection reset by peer", Members: []string{"connection reset by peer"}},
				{Template: "upstream connect error again", Members: []string{"upstream connect error again"}},
			},
		},
		{
			// Drain routes on the first token before comparing, so an
			// entity name in first position keeps signatures apart.
			name: "entity name as first token stays apart",
			in:   []string{"user <*> not found", "order <*> not found"},
			want: []Cluster{
				{Template: "order <*> not found", Members: []string{"order <*> not found"}},
				{Template: "user <*> not found", Members: []string{"user <*> not found"}},
			},
		},
		{
			name: "entity name after the first token stays apart",
			in:   []string{"lookup failed: user <*> not found", "lookup failed: order <*> not found"},
			want: []Cluster{
				{Template: "lookup failed: order <*> not found", Members: []string{"lookup failed: order <*> not found"}},
				{Template: "lookup failed: user <*> not found", Members: []string{"lookup failed: user <*> not found"}},
			},
		},
		{
			name: "entity name after the first token apart at depth 5 threshold 0.7",
			in:   []string{"lookup failed: user <*> not found", "lookup failed: order <*> not found"},
			opt:  Options{Depth: 5, Similarity: 0.7},
			want: []Cluster{
				{Template: "lookup failed: order <*> not found", Members: []string{"lookup failed: order <*> not found"}},
				{Template: "lookup failed: user <*> not found", Members: []string{"lookup failed: user <*> not found"}},
			},
		},
		{
			// Wildcards do not count as agreement, so messages that share
			// only their masked slots stay apart.
			name: "shared placeholders alone do not merge",
			in:   []string{"<*> <*> <*> failed", "<*> <*> <*> ok"},
			want: []Cluster{
				{Template: "<*> <*> <*> failed", Members: []string{"<*> <*> <*> failed"}},
				{Template: "<*> <*> <*> ok", Members: []string{"<*> <*> <*> ok"}},
			},
		},
		{
			name: "empty message is its own cluster",
			in:   []string{"", "boom", ""},
			want: []Cluster{
				{Template: "", Members: []string{""}},
				{Template: "boom", Members: []string{"boom"}},
			},
		},
		{
			name: "duplicates reported once",
			in:   []string{"db down", "db down", "db up", "db up"},
			want: []Cluster{
				{Template: "db down", Members: []string{"db down"}},
				{Template: "db up", Members: []string{"db up"}},
			},
		},
		{
			name: "one-token messages compare without routing",
			in:   []string{"EOF", "timeout"},
			want: []Cluster{
				{Template: "EOF", Members: []string{"EOF"}},
				{Template: "timeout", Members: []string{"timeout"}},
			},
		},
		{
			name: "nil input",
			in:   nil,
			want: []Cluster{},
		},
		{
			// With one child allowed, every first token shares the
			// wildcard branch, so the first token can be generalised too.
			name: "full node sends tokens to the wildcard branch",
			in: []string{
				"cart <*> not found", "item <*> not found", "order <*> not found",
				"invoice <*> not found", "user <*> not found",
			},
			opt: Options{MaxChildren: 1},
			want: []Cluster{{
				Template: "<*> <*> not found",
				Members: []string{
					"cart <*> not found", "invoice <*> not found", "item <*> not found",
					"order <*> not found", "user <*> not found",
				},
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Group(tc.in, tc.opt)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Group(%q)\n got %#v\nwant %#v", tc.in, got, tc.want)
			}
		})
	}
}

func TestGroupDoesNotModifyInput(t *testing.T) {
	in := []string{"b x", "a x", "b x"}
	Group(in, Options{})
	if !reflect.DeepEqual(in, []string{"b x", "a x", "b x"}) {
		t.Errorf("input modified: %q", in)
	}
}

// corpus returns n distinct masked messages with the shapes real error
// logs have: a few fixed texts with slots that vary.
func corpus(n int) []string {
	shapes := []string{
		"function invocation failed: fn-<*> timed out after <*>ms on provider %s",
		"dial tcp <*>: connect: connection refused to %s",
		"pq: duplicate key value violates unique constraint %s",
		"GET <*> returned <*> from %s",
		"%s: context deadline exceeded",
		"user %s not found",
		"cache miss for key %s in region <*>",
		"%s",
		"upstream connect error or disconnect/reset before headers reset reason %s",
		"failed to publish event %s to topic <*> after <*> retries",
	}
	words := []string{"aws", "gcp", "azure", "orders", "payments", "users", "checkout", "inventory", "ledger", "search"}
	out := make([]string, 0, n)
	for i := 0; len(out) < n; i++ {
		w := words[i%len(words)]
		for k := i / len(words); k > 0; k /= len(words) {
			w += "-" + words[k%len(words)]
		}
		out = append(out, Mask(fmt.Sprintf(shapes[i%len(shapes)], w)))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestGroupOrderIndependent(t *testing.T) {
	msgs := corpus(2000)
	want := Group(msgs, Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		shuffled := slices.Clone(msgs)
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		if got := Group(shuffled, Options{}); !reflect.DeepEqual(got, want) {
			t.Fatalf("shuffle %d: clusters differ from sorted input", i)
		}
	}
}

func TestGroupInvariants(t *testing.T) {
	msgs := corpus(3000)
	got := Group(msgs, Options{})
	if !reflect.DeepEqual(got, Group(msgs, Options{})) {
		t.Fatal("Group is not deterministic")
	}
	seen := map[string]int{}
	for i, c := range got {
		if i > 0 && got[i-1].Template >= c.Template {
			t.Errorf("templates not strictly sorted: %q then %q", got[i-1].Template, c.Template)
		}
		if !slices.IsSorted(c.Members) {
			t.Errorf("members of %q not sorted", c.Template)
		}
		for _, m := range c.Members {
			seen[m]++
			if !Match(c.Template, m) {
				t.Errorf("member %q does not match its template %q", m, c.Template)
			}
		}
	}
	for _, m := range msgs {
		if seen[m] != 1 {
			t.Errorf("message %q in %d clusters, want 1", m, seen[m])
		}
	}
	if len(seen) != len(msgs) {
		t.Errorf("%d members for %d messages", len(seen), len(msgs))
	}
	// Shapes whose variable word comes first, or is the whole message,
	// only merge once the first-token node is full; the others collapse.
	if len(got) > len(msgs)/5 {
		t.Errorf("%d clusters for %d messages of 10 shapes", len(got), len(msgs))
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name, template, msg string
		want                bool
	}{
		{"equal", "db down", "db down", true},
		{"wildcard slot", "provider <*> failed", "provider aws failed", true},
		{"wildcard matches placeholder", "after <*>", "after <*>", true},
		{"literal differs", "provider <*> failed", "provider aws ok", false},
		{"longer message", "db <*>", "db down now", false},
		{"shorter message", "db <*> now", "db down", false},
		{"partial placeholder is literal", "fn-<*> crashed", "fn-abc crashed", false},
		{"white space is not significant", "a <*>", " a \t b ", true},
		{"empty", "", "", true},
		{"empty template", "", "x", false},
		{"gap matches nothing", "a <*><*> b", "a b", true},
		{"gap matches a run", "a <*><*> b", "a x y z b", true},
		{"gap at the end", "a <*> <*><*>", "a x y", true},
		{"gap needs the rest", "a <*><*> b c", "a b x c", false},
		{"gap backtracks", "a <*><*> b c", "a b b c", true},
		{"two gaps", "<*><*> x <*><*> y", "x q y", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Match(tc.template, tc.msg); got != tc.want {
				t.Errorf("Match(%q, %q) = %v, want %v", tc.template, tc.msg, got, tc.want)
			}
		})
	}
}

func BenchmarkGroup(b *testing.B) {
	msgs := corpus(5000)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		Group(msgs, Options{})
		n++
	}
	b.ReportMetric(float64(n*len(msgs))/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(len(msgs)), "msgs/op")
}

// TestSignaturesKeepValuesOut checks the promise culprit makes on top of
// the benchmark: whatever Group does with the masked messages, ids,
// numbers, host names, addresses and customers' quoted values never reach
// a signature.
func TestSignaturesKeepValuesOut(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 15))
	shapes := []string{
		"function invocation failed: fn-%[1]d returned 502 from upstream %[2]s",
		"upstream request timeout after %[1]dms to origin %[3]s",
		"request blocked by WAF rule %[1]d for %[3]s from %[2]s",
		"session token expired for user %[1]d",
		"mail to %[4]s bounced: quota exceeded",
		"job %[5]s failed for project %[6]q",
		"%[3]s close, %[1]d bytes (%[1]d.%[1]d KB) sent, lifetime %[1]d:%[1]d",
		"%[3]s close, %[1]d bytes sent, lifetime <%[1]d sec",
	}
	customers := []string{"acme", "globex", "initech", "umbrella", "hooli", "stark"}
	var msgs, values []string
	for i := range 600 {
		c := customers[rng.IntN(len(customers))]
		v := []any{
			100 + rng.IntN(900000),
			fmt.Sprintf("10.%d.%d.%d:8443", rng.IntN(256), rng.IntN(256), 1+rng.IntN(254)),
			fmt.Sprintf("shop-%s.example.net", c),
			fmt.Sprintf("ops@%s.example.com", c),
			fmt.Sprintf("%08x-1234-4abc-8def-%012x", rng.Uint32(), rng.Uint64()&0xffffffffffff),
			c + " site",
		}
		values = append(values, v[1].(string), v[2].(string), v[3].(string), v[4].(string), c)
		msgs = append(msgs, Mask(fmt.Sprintf(shapes[i%len(shapes)], v...)))
	}
	sigs := Group(msgs, Options{})
	if len(sigs) > len(shapes) {
		t.Errorf("%d signatures for %d shapes", len(sigs), len(shapes))
	}
	for _, s := range sigs {
		if strings.ContainsAny(s.Template, "0123456789") {
			t.Errorf("a number in signature %q", s.Template)
		}
		for _, v := range values {
			if strings.Contains(s.Template, v) {
				t.Errorf("value %q in signature %q", v, s.Template)
			}
		}
	}
}
