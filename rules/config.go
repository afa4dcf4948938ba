// Package rules holds culprit's configuration: its schema, defaults and
// validation. It imports nothing from the rest of the module so that every
// package can take its own section without an import cycle.
package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration file.
type Config struct {
	Fields    Fields    `yaml:"fields"`
	Correlate Correlate `yaml:"correlate"`
}

// Fields maps culprit's roles onto the log documents' field names. Dotted
// names match both nested objects and literal dotted keys.
type Fields struct {
	Time     string `yaml:"time"`
	Service  string `yaml:"service"`
	Version  string `yaml:"version"`
	Host     string `yaml:"host"`
	Customer string `yaml:"customer"`
	Site     string `yaml:"site"`
	Path     string `yaml:"path"`
	Provider string `yaml:"provider"`
	Region   string `yaml:"region"`
	Status   string `yaml:"status"`
	Outcome  string `yaml:"outcome"`
	// Message lists the fields tried in order for the error text.
	Message []string `yaml:"message"`
}

// Correlate tunes detection. The defaults are what the benchmarks measure;
// change them with `culprit backtest` in hand, not by feel.
type Correlate struct {
	// Bucket is the width of one series bucket.
	Bucket Duration `yaml:"bucket"`
	// AttributionWindow is how long before an onset a deploy may start and
	// still be suspected.
	AttributionWindow Duration `yaml:"attribution_window"`
	// FDR is the false discovery rate controlled across every series tested
	// in one run (Benjamini–Hochberg).
	FDR float64 `yaml:"fdr"`
	// MinErrors is the fewest errors after onset that can make a finding.
	MinErrors int `yaml:"min_errors"`
	// MinRatio is the smallest after/before rate ratio that is a change
	// worth reporting, however significant.
	MinRatio float64 `yaml:"min_ratio"`
	// NewErrorMinEntities is how many distinct customers or hosts a new
	// signature must reach before it is a new error class.
	NewErrorMinEntities int `yaml:"new_error_min_entities"`
	// PageMinCustomers is the fewest affected customers for severity page.
	PageMinCustomers int `yaml:"page_min_customers"`
	// RecoveryBuckets is how many buckets at baseline mean recovered.
	RecoveryBuckets int `yaml:"recovery_buckets"`
	// TicketBucket is the bucket width for ticket volume.
	TicketBucket Duration `yaml:"ticket_bucket"`
}

// Duration is a time.Duration written as "90s", "5m" or "1h" in YAML.
type Duration time.Duration

// UnmarshalYAML parses Go duration syntax.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: duration must be a string like \"5m\"", n.Line)}}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		// A TypeError lets the decoder go on and report every bad key.
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: invalid duration %q: use forms like 90s, 5m or 1h", n.Line, s)}}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes Go duration syntax.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Default is the configuration used when no file is given. It maps the
// Elastic Common Schema fields that most HTTP logs already carry.
func Default() Config {
	return Config{
		Fields: Fields{
			Time:     "@timestamp",
			Service:  "service.name",
			Version:  "service.version",
			Host:     "host.name",
			Customer: "organization.id",
			Site:     "url.domain",
			Path:     "url.path",
			Provider: "cloud.provider",
			Region:   "cloud.region",
			Status:   "http.response.status_code",
			Outcome:  "event.outcome",
			Message:  []string{"error.message", "message"},
		},
		Correlate: Correlate{
			Bucket:              Duration(time.Minute),
			AttributionWindow:   Duration(60 * time.Minute),
			FDR:                 0.01,
			MinErrors:           10,
			MinRatio:            2,
			NewErrorMinEntities: 3,
			PageMinCustomers:    5,
			RecoveryBuckets:     10,
			TicketBucket:        Duration(15 * time.Minute),
		},
	}
}

// Load reads and validates a configuration file. Every problem is reported,
// each with the file name and, where known, its line.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML strictly over the defaults: unknown keys are errors,
// and keys left out keep their default values.
func Parse(b []byte) (Config, error) {
	c := Default()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, cleanYAMLError(err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// cleanYAMLError drops the yaml package's Go type names, which mean nothing
// to an operator, while keeping its line numbers.
func cleanYAMLError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, 0, len(te.Errors))
		for _, e := range te.Errors {
			e = strings.Replace(e, "yaml: unmarshal errors:", "", 1)
			if i := strings.Index(e, " in type "); i >= 0 {
				e = e[:i]
			}
			msgs = append(msgs, strings.TrimSpace(e))
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	return err
}

// Validate reports every invalid value at once.
func (c Config) Validate() error {
	var errs []error
	req := func(name, v string) {
		if strings.TrimSpace(v) == "" {
			errs = append(errs, fmt.Errorf("fields.%s must not be empty", name))
		}
	}
	f := c.Fields
	req("time", f.Time)
	req("service", f.Service)
	req("status", f.Status)
	if len(f.Message) == 0 {
		errs = append(errs, errors.New("fields.message must list at least one field"))
	}
	k := c.Correlate
	if k.Bucket.D() < time.Second {
		errs = append(errs, fmt.Errorf("correlate.bucket must be at least 1s, got %s", k.Bucket.D()))
	}
	if k.AttributionWindow.D() < 0 {
		errs = append(errs, fmt.Errorf("correlate.attribution_window must not be negative, got %s", k.AttributionWindow.D()))
	}
	if k.FDR <= 0 || k.FDR >= 1 {
		errs = append(errs, fmt.Errorf("correlate.fdr must be between 0 and 1 exclusive, got %g", k.FDR))
	}
	if k.MinErrors < 1 {
		errs = append(errs, fmt.Errorf("correlate.min_errors must be at least 1, got %d", k.MinErrors))
	}
	if k.MinRatio < 1 {
		errs = append(errs, fmt.Errorf("correlate.min_ratio must be at least 1, got %g", k.MinRatio))
	}
	if k.NewErrorMinEntities < 1 {
		errs = append(errs, fmt.Errorf("correlate.new_error_min_entities must be at least 1, got %d", k.NewErrorMinEntities))
	}
	if k.PageMinCustomers < 1 {
		errs = append(errs, fmt.Errorf("correlate.page_min_customers must be at least 1, got %d", k.PageMinCustomers))
	}
	if k.RecoveryBuckets < 1 {
		errs = append(errs, fmt.Errorf("correlate.recovery_buckets must be at least 1, got %d", k.RecoveryBuckets))
	}
	if k.TicketBucket.D() < k.Bucket.D() {
		errs = append(errs, fmt.Errorf("correlate.ticket_bucket (%s) must not be shorter than correlate.bucket (%s)", k.TicketBucket.D(), k.Bucket.D()))
	}
	return errors.Join(errs...)
}
