package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate/report"
	"github.com/culprithq/culprit/rules"
	"github.com/culprithq/culprit/sources/customers"
	"github.com/culprithq/culprit/sources/elasticsearch"
	"github.com/culprithq/culprit/sources/file"
)

const correlateUsage = "correlate (--logs FILE | --es URL --index PATTERN) [--deploys FILE] [--tickets FILE] [--customers FILE] [--from T] [--to T] [--config FILE] [--format text|json] [--kibana URL [--kibana-data-view ID]]"

func cmdCorrelate(ctx context.Context, env *environ, args []string) error {
	fs := newFlags("correlate", correlateUsage, env.stderr)
	logs := fs.String("logs", "", "NDJSON log file, one ECS document per request (.gz accepted)")
	deploys := fs.String("deploys", "", "deploy events: JSON array or NDJSON (.gz accepted)")
	tickets := fs.String("tickets", "", "tickets in Zendesk incremental-export shape (.gz accepted)")
	custs := fs.String("customers", "", "customers file, CSV or JSON (organization.id, name, tier, vip, owner); default customers.file of --config")
	from := fs.String("from", "", "start of the window, RFC 3339 (default: first log line)")
	to := fs.String("to", "", "end of the window, RFC 3339 (default: last log line)")
	config := fs.String("config", "", "YAML configuration file (default: built-in ECS mapping)")
	format := fs.String("format", "text", "output format: text or json")
	esURL := fs.String("es", "", "Elasticsearch URL(s), comma-separated, instead of --logs")
	index := fs.String("index", "", "index pattern to read with --es, e.g. 'logs-*'")
	esUser := fs.String("es-user", "", "Elasticsearch user for basic auth (or CULPRIT_ES_USERNAME); the password comes from CULPRIT_ES_PASSWORD")
	esCA := fs.String("es-ca", "", "PEM file with the CA certificate of the Elasticsearch cluster")
	esTimeout := fs.Duration("es-timeout", 30*time.Second, "timeout of one Elasticsearch request")
	kibana := fs.String("kibana", "", "Kibana URL, e.g. http://localhost:5601: adds a Discover link to every log finding")
	dataView := fs.String("kibana-data-view", "culprit-logs", "id of the Kibana data view over the logs, for --kibana")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkKibana(*kibana, *dataView); err != nil {
		return err
	}
	if (*logs == "") == (*esURL == "") {
		fs.Usage()
		return usagef("correlate: give exactly one of --logs FILE or --es URL")
	}
	if *esURL != "" && *index == "" {
		return usagef("correlate: --es needs --index PATTERN")
	}
	if err := checkFormat(*format, "text", "json"); err != nil {
		return err
	}
	f, err := parseTime("from", *from)
	if err != nil {
		return err
	}
	t, err := parseTime("to", *to)
	if err != nil {
		return err
	}
	cfg := rules.Default()
	if *config != "" {
		if cfg, err = rules.Load(*config); err != nil {
			return err
		}
	}
	if *custs != "" {
		cfg.Customers.File = *custs
	}
	in := fileInputs{logs: *logs, deploys: *deploys, tickets: *tickets, from: f, to: t}
	if *esURL != "" {
		user := *esUser
		if user == "" {
			user = env.getenv("CULPRIT_ES_USERNAME")
		}
		in.es = &elasticsearch.Config{
			URLs:       strings.Split(*esURL, ","),
			Index:      *index,
			APIKey:     env.getenv("CULPRIT_ES_API_KEY"),
			Username:   user,
			Password:   env.getenv("CULPRIT_ES_PASSWORD"),
			CACertFile: *esCA,
			Timeout:    *esTimeout,
			Fields:     cfg.Fields,
		}
	}
	res, err := correlateFiles(ctx, env.stderr, in, cfg)
	if err != nil {
		return err
	}
	if *kibana != "" {
		if err := addKibanaLinks(res, *kibana, *dataView, cfg.Fields); err != nil {
			return err
		}
	}
	if *format == "json" {
		return report.JSON(env.stdout, res)
	}
	return report.Text(env.stdout, res)
}

// checkKibana rejects a bad --kibana before the analysis, not after it.
// The URL is not repeated: it may carry credentials.
func checkKibana(base, dataView string) error {
	if base == "" {
		return nil
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return usagef("--kibana: not an http(s) URL without query or fragment (example: http://localhost:5601)")
	}
	if strings.TrimSpace(dataView) == "" {
		return usagef("--kibana-data-view: empty")
	}
	return nil
}

// addKibanaLinks links every log finding to its documents in Kibana
// Discover. It does so whatever the source: a --logs export is assumed to
// be the documents the data view shows, and the query uses the configured
// field names either way. Ticket surges have no documents to show.
func addKibanaLinks(res *correlate.Result, base, dataView string, fields rules.Fields) error {
	for i := range res.Findings {
		f := &res.Findings[i]
		if f.Kind == correlate.KindTicketSurge {
			continue
		}
		u, err := elasticsearch.DiscoverURL(base, dataView, fields, f, time.Time{}, time.Time{})
		if err != nil {
			return usagef("correlate: %v", err)
		}
		f.Links = append(f.Links, correlate.Link{Title: elasticsearch.DiscoverTitle, URL: u})
	}
	return nil
}

type fileInputs struct {
	logs, deploys, tickets string
	es                     *elasticsearch.Config // instead of logs
	from, to               time.Time
}

// logSource is what the pipeline needs of a log source beyond
// correlate.Source: the data's own time range, for default windows.
type logSource interface {
	correlate.Source
	Range(ctx context.Context) (from, to time.Time, err error)
}

// correlateFiles is the offline pipeline shared by `correlate` and `demo`.
func correlateFiles(ctx context.Context, stderr io.Writer, in fileInputs, cfg rules.Config) (*correlate.Result, error) {
	deploys, tickets, err := readSidecars(in.deploys, in.tickets)
	if err != nil {
		return nil, err
	}
	dir, err := loadCustomers(cfg.Customers.File)
	if err != nil {
		return nil, err
	}
	var src logSource
	var fileSrc *file.Logs
	if in.es != nil {
		es, err := elasticsearch.New(*in.es)
		if err != nil {
			return nil, usagef("correlate: %v", err)
		}
		src = es
	} else {
		if fileSrc, err = file.OpenLogs(in.logs, cfg.Fields, cfg.Correlate.Bucket.D()); err != nil {
			return nil, err
		}
		src = fileSrc
	}
	from, to := in.from, in.to
	if from.IsZero() || to.IsZero() {
		lo, hi, err := src.Range(ctx)
		if err != nil {
			return nil, err
		}
		if from.IsZero() {
			from = lo
		}
		if to.IsZero() {
			to = hi.Add(time.Nanosecond)
		}
	}
	w, err := correlate.NewWindow(from, to, cfg.Correlate.Bucket.D())
	if err != nil {
		return nil, usagef("correlate: %v", err)
	}
	res, err := correlate.Run(ctx, src, correlate.Input{Window: w, Deploys: deploys, Tickets: tickets,
		Customers: dir, Priority: &cfg.Priority}, cfg.Correlate)
	if fileSrc != nil {
		reportSkipped(stderr, in.logs, fileSrc.Stats())
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// reportSkipped tells the user about lines that were not used, naming the
// first few so they can be found, without drowning the report.
func reportSkipped(w io.Writer, path string, st file.Stats) {
	var total int64
	reasons := make([]string, 0, len(st.Skipped))
	for r, n := range st.Skipped {
		total += n
		reasons = append(reasons, fmt.Sprintf("%d %s", n, r))
	}
	if total == 0 {
		return
	}
	sort.Strings(reasons)
	for _, p := range st.Problems {
		fmt.Fprintf(w, "%s:%d: skipped: %s\n", path, p.Line, p.Reason)
	}
	fmt.Fprintf(w, "%s: skipped %d of %d lines (%s)\n", path, total, st.Lines, strings.Join(reasons, ", "))
}

// readSidecars reads the deploys and tickets files given on the command
// line; an empty path means none.
func readSidecars(deploysPath, ticketsPath string) (deploys []correlate.Deploy, tickets []correlate.Ticket, err error) {
	if deploysPath != "" {
		if deploys, err = file.ReadDeploys(deploysPath); err != nil {
			return nil, nil, err
		}
	}
	if ticketsPath != "" {
		if tickets, err = file.ReadTickets(ticketsPath); err != nil {
			return nil, nil, err
		}
	}
	return deploys, tickets, nil
}

// loadCustomers reads the customers file, if one is configured; nil (no
// directory) otherwise, and then customers stay ids.
func loadCustomers(path string) (correlate.Directory, error) {
	if path == "" {
		return nil, nil
	}
	d, err := customers.Load(path)
	if err != nil {
		return nil, err
	}
	return d, nil
}
