// Package customers is culprit's customer directory: what support knows
// about each organization.id the logs carry (name, tier, VIP, account
// owner). Findings name customers and weigh tiers through it; without one,
// customers stay ids and nothing else changes.
//
// A Directory is filled from a file (Load: CSV or JSON) and, in the daemon,
// kept current from Zendesk Organizations (sources/zendesk), which calls
// Put and Remove as organizations change.
package customers

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/culprithq/culprit/correlate"
)

// Directory maps organization ids to customers. Its methods are safe for
// concurrent use: the Zendesk poller writes while evaluations read.
type Directory struct {
	mu   sync.RWMutex
	byID map[string]correlate.Customer
}

// New returns a directory holding cs; a later customer with the same id
// replaces an earlier one.
func New(cs ...correlate.Customer) *Directory {
	d := &Directory{byID: make(map[string]correlate.Customer, len(cs))}
	d.Put(cs...)
	return d
}

// Customer returns what is known about organization id. A nil directory
// knows nobody, so callers need not check whether one is configured.
func (d *Directory) Customer(id string) (correlate.Customer, bool) {
	if d == nil {
		return correlate.Customer{}, false
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	c, ok := d.byID[id]
	return c, ok
}

// Put adds or replaces customers by id. Tiers are kept lower-case, so
// "Enterprise" in a CRM export and "enterprise" in a route are one tier.
func (d *Directory) Put(cs ...correlate.Customer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byID == nil {
		d.byID = map[string]correlate.Customer{}
	}
	for _, c := range cs {
		c.Tier = normTier(c.Tier)
		d.byID[c.ID] = c
	}
}

// Remove forgets the customers with these ids (a deleted organization).
func (d *Directory) Remove(ids ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, id := range ids {
		delete(d.byID, id)
	}
}

// Len is the number of customers known.
func (d *Directory) Len() int {
	if d == nil {
		return 0
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.byID)
}

// All returns every customer, sorted by id.
func (d *Directory) All() []correlate.Customer {
	if d == nil {
		return nil
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]correlate.Customer, 0, len(d.byID))
	for _, c := range d.byID {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b correlate.Customer) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func normTier(t string) string { return strings.ToLower(strings.TrimSpace(t)) }

// Load reads a customers file: JSON when its name ends in .json (or its
// first non-blank byte is '[' or '{'), CSV otherwise. See ParseCSV and
// ParseJSON for the formats. Every bad record is reported at once, each
// naming the file, the line or record, and the field.
func Load(path string) (*Directory, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("customers: %w", err)
	}
	name := filepath.Base(path)
	var cs []correlate.Customer
	trimmed := bytes.TrimSpace(b)
	if strings.EqualFold(filepath.Ext(path), ".json") || (len(trimmed) > 0 && (trimmed[0] == '[' || trimmed[0] == '{')) {
		cs, err = ParseJSON(bytes.NewReader(b), name)
	} else {
		cs, err = ParseCSV(bytes.NewReader(b), name)
	}
	if err != nil {
		return nil, err
	}
	return New(cs...), nil
}

// Column names. A CSV header names its columns in any order; tier may be
// called plan, and organization.id may be called id or organization_id, the
// names CRM exports use.
var columns = map[string]string{
	"organization.id": "organization.id", "organization_id": "organization.id", "id": "organization.id",
	"name": "name", "tier": "tier", "plan": "tier", "vip": "vip", "owner": "owner",
}

// ParseCSV reads customers from CSV with a header row naming the columns
// organization.id (required), name, tier (or plan), vip and owner; other
// columns are ignored, so a CRM export can be used as it is. vip is
// true/false, yes/no, 1/0 or empty (false). name is where errors say the
// data came from.
func ParseCSV(r io.Reader, name string) ([]correlate.Customer, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("customers %s: empty file: want a header row with organization.id, name, tier, vip, owner", name)
	}
	if err != nil {
		return nil, fmt.Errorf("customers %s: %w", name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if c, ok := columns[h]; ok {
			if _, dup := col[c]; dup {
				return nil, fmt.Errorf("customers %s: line 1: column %q given twice", name, c)
			}
			col[c] = i
		}
	}
	if _, ok := col["organization.id"]; !ok {
		return nil, fmt.Errorf("customers %s: line 1: no organization.id column (header is %q)", name, strings.Join(header, ","))
	}
	get := func(rec []string, c string) string {
		if i, ok := col[c]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var (
		out  []correlate.Customer
		errs []error
		seen = map[string]string{}
	)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			errs = append(errs, fmt.Errorf("customers %s: %w", name, err))
			if len(errs) >= maxErrors {
				break
			}
			continue
		}
		where := fmt.Sprintf("customers %s: line %d", name, line)
		c, err := build(where, get(rec, "organization.id"), get(rec, "name"), get(rec, "tier"), get(rec, "vip"), get(rec, "owner"), seen)
		if err != nil {
			errs = append(errs, err)
			if len(errs) >= maxErrors {
				break
			}
			continue
		}
		out = append(out, c)
	}
	return out, errors.Join(errs...)
}

// maxErrors bounds how many bad records one error reports: a file in the
// wrong format would otherwise fail on every line.
const maxErrors = 20

// jsonCustomer is one record of the JSON format. Either organization.id or
// id names the organization; a number is accepted for it.
type jsonCustomer struct {
	OrgID json.RawMessage `json:"organization.id"`
	ID    json.RawMessage `json:"id"`
	Name  string          `json:"name"`
	Tier  string          `json:"tier"`
	Plan  string          `json:"plan"`
	VIP   json.RawMessage `json:"vip"`
	Owner string          `json:"owner"`
}

// ParseJSON reads customers from a JSON array of objects, or an object
// with a "customers" array, with the fields organization.id (or id; string
// or number), name, tier (or plan), vip (boolean) and owner. Unknown fields
// are ignored.
func ParseJSON(r io.Reader, name string) ([]correlate.Customer, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("customers %s: %w", name, err)
	}
	var raws []json.RawMessage
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		var wrap struct {
			Customers []json.RawMessage `json:"customers"`
		}
		if err := json.Unmarshal(b, &wrap); err != nil {
			return nil, fmt.Errorf("customers %s: %w", name, err)
		}
		raws = wrap.Customers
	} else if err := json.Unmarshal(b, &raws); err != nil {
		return nil, fmt.Errorf("customers %s: want a JSON array of customers: %w", name, err)
	}
	var (
		out  []correlate.Customer
		errs []error
		seen = map[string]string{}
	)
	for i, raw := range raws {
		where := fmt.Sprintf("customers %s: record %d", name, i+1)
		var j jsonCustomer
		if err := json.Unmarshal(raw, &j); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		idRaw := j.OrgID
		if len(idRaw) == 0 {
			idRaw = j.ID
		}
		id, err := jsonID(idRaw)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: organization.id: %w", where, err))
			continue
		}
		vip := ""
		if len(j.VIP) > 0 && string(j.VIP) != "null" {
			var v bool
			if err := json.Unmarshal(j.VIP, &v); err != nil {
				errs = append(errs, fmt.Errorf("%s: vip: %s is not true or false", where, j.VIP))
				continue
			}
			vip = strconv.FormatBool(v)
		}
		tier := j.Tier
		if tier == "" {
			tier = j.Plan
		}
		c, err := build(where, id, j.Name, tier, vip, j.Owner, seen)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, c)
		if len(errs) >= maxErrors {
			break
		}
	}
	return out, errors.Join(errs...)
}

// jsonID reads an id given as a string or an integer.
func jsonID(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		if _, err := n.Int64(); err == nil {
			return n.String(), nil
		}
	}
	return "", fmt.Errorf("%s is not a string or an integer", raw)
}

// build checks one record, whatever its format.
func build(where, id, name, tier, vip, owner string, seen map[string]string) (correlate.Customer, error) {
	id = strings.TrimSpace(id)
	if id == "" {
		return correlate.Customer{}, fmt.Errorf("%s: organization.id is empty", where)
	}
	if prev, dup := seen[id]; dup {
		return correlate.Customer{}, fmt.Errorf("%s: organization.id %q is already at %s", where, id, prev)
	}
	v, err := parseVIP(vip)
	if err != nil {
		return correlate.Customer{}, fmt.Errorf("%s: vip: %w", where, err)
	}
	seen[id] = where[strings.LastIndex(where, ": ")+2:] // "line 7", "record 3"
	return correlate.Customer{ID: id, Name: strings.TrimSpace(name), Tier: normTier(tier), VIP: v, Owner: strings.TrimSpace(owner)}, nil
}

func parseVIP(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "false", "no", "0", "n", "f":
		return false, nil
	case "true", "yes", "1", "y", "t":
		return true, nil
	}
	return false, fmt.Errorf("%q is not true or false (or yes/no, 1/0)", s)
}
