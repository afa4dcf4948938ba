package customers

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/culprithq/culprit/correlate"
)

func TestLoadCSV(t *testing.T) {
	d, err := Load("testdata/customers.csv")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]correlate.Customer{
		"10001": {ID: "10001", Name: "Acme Corp", Tier: "enterprise", VIP: true, Owner: "dana@hosting.example"},
		"10002": {ID: "10002", Name: "Globex", Tier: "pro"},
		"10003": {ID: "10003", Name: "Initech, Inc.", Tier: "premium", VIP: true, Owner: "sam@hosting.example"},
	}
	if d.Len() != len(want) {
		t.Fatalf("Len = %d, want %d", d.Len(), len(want))
	}
	for id, w := range want {
		got, ok := d.Customer(id)
		if !ok || got != w {
			t.Errorf("Customer(%s) = %+v, %v; want %+v", id, got, ok, w)
		}
	}
	if _, ok := d.Customer("99999"); ok {
		t.Error("an unknown id was found")
	}
}

func TestLoadJSON(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.json")
	body := `[{"organization.id":"10001","name":"Acme Corp","tier":"Enterprise","vip":true,"owner":"dana"},
	{"id":10002,"name":"Globex","plan":"pro","extra":1}]`
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := d.Customer("10001"); c != (correlate.Customer{ID: "10001", Name: "Acme Corp", Tier: "enterprise", VIP: true, Owner: "dana"}) {
		t.Errorf("10001 = %+v", c)
	}
	if c, _ := d.Customer("10002"); c != (correlate.Customer{ID: "10002", Name: "Globex", Tier: "pro"}) {
		t.Errorf("10002 = %+v", c)
	}
}

func TestBadInputNamesFileLineAndField(t *testing.T) {
	for _, tc := range []struct {
		name, file, body string
		want             []string
	}{
		{"csv bad vip", "c.csv", "organization.id,name,vip\n1,A,yes\n2,B,maybe\n", []string{"customers c.csv: line 3: vip: \"maybe\" is not true or false"}},
		{"csv empty id", "c.csv", "organization.id,name\n1,A\n,B\n", []string{"customers c.csv: line 3: organization.id is empty"}},
		{"csv duplicate", "c.csv", "organization.id,name\n1,A\n1,B\n", []string{"customers c.csv: line 3: organization.id \"1\" is already at line 2"}},
		{"csv no id column", "c.csv", "name,tier\nA,pro\n", []string{"customers c.csv: line 1: no organization.id column"}},
		{"csv empty", "c.csv", "", []string{"customers c.csv: empty file"}},
		{"json bad vip", "c.json", `[{"id":"1"},{"id":"2","vip":"yes"}]`, []string{"customers c.json: record 2: vip: \"yes\" is not true or false"}},
		{"json bad id", "c.json", `[{"id":1.5}]`, []string{"customers c.json: record 1: organization.id: 1.5 is not a string or an integer"}},
		{"json not an array", "c.json", `"x"`, []string{"customers c.json: want a JSON array of customers"}},
		{"several at once", "c.csv", "organization.id,vip\n,\n2,x\n", []string{"line 2: organization.id is empty", "line 3: vip"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), tc.file)
			if err := os.WriteFile(p, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(p)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestNilDirectoryKnowsNobody(t *testing.T) {
	var d *Directory
	if _, ok := d.Customer("1"); ok || d.Len() != 0 || d.All() != nil {
		t.Fatal("a nil directory answered")
	}
}

func TestPutRemoveConcurrent(t *testing.T) {
	d := New()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := string(rune('a' + i))
			d.Put(correlate.Customer{ID: id, Tier: " Enterprise "})
			d.Customer(id)
		}()
	}
	wg.Wait()
	if d.Len() != 8 {
		t.Fatalf("Len = %d", d.Len())
	}
	if c, _ := d.Customer("a"); c.Tier != "enterprise" {
		t.Errorf("tier not normalised: %q", c.Tier)
	}
	d.Remove("a", "b")
	if _, ok := d.Customer("a"); ok || d.Len() != 6 {
		t.Fatal("Remove did not remove")
	}
	if all := d.All(); len(all) != 6 || all[0].ID != "c" {
		t.Fatalf("All = %+v", all)
	}
}
