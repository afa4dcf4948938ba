package rules

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Silence stops pages for matching findings between StartsAt and EndsAt —
// a known issue being worked on. The findings are still recorded.
type Silence struct {
	Matchers Matchers `yaml:"matchers"`
	StartsAt Time     `yaml:"starts_at"`
	EndsAt   Time     `yaml:"ends_at"`
	// Comment says why, for whoever finds the silence later.
	Comment   string `yaml:"comment"`
	CreatedBy string `yaml:"created_by"`

	service, signature *regexp.Regexp // the "~" matchers, set when loaded from a file
}

// Matchers select findings. A value starting with "~" is a regular
// expression that may match anywhere (anchor it with ^ and $); any other
// value must match exactly. An empty matcher matches everything.
type Matchers struct {
	Service   string `yaml:"service"`
	Signature string `yaml:"signature"`
}

// Maintenance is a recurring window in which the listed services never
// page: a weekly database upgrade, a nightly batch.
//
// Schedule is a five-field cron expression, optionally prefixed with
// CRON_TZ=Zone; a window starts at each time it names and lasts Duration.
// Like cron, a start inside the hour skipped when clocks spring forward
// does not happen that day, and one inside the repeated autumn hour
// happens twice.
type Maintenance struct {
	// Services the window applies to; empty, every service.
	Services []string `yaml:"services"`
	Schedule string   `yaml:"schedule"`
	Duration Duration `yaml:"duration"`

	schedule cron.Schedule // set when loaded from a file
}

// compileMatcher returns the regexp of a "~" matcher, nil for an exact one.
func compileMatcher(v string) (*regexp.Regexp, error) {
	expr, ok := strings.CutPrefix(v, "~")
	if !ok {
		return nil, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("invalid regexp: %w", err)
	}
	return re, nil
}

func matchOne(pattern string, re *regexp.Regexp, v string) bool {
	switch {
	case pattern == "":
		return true
	case re != nil:
		return re.MatchString(v)
	case strings.HasPrefix(pattern, "~"):
		// Built in code and never validated: compile on the fly.
		re, err := compileMatcher(pattern)
		return err == nil && re.MatchString(v)
	}
	return pattern == v
}

// active reports whether t is in [StartsAt, EndsAt); a zero bound is open.
func (s *Silence) active(t time.Time) bool {
	if !s.StartsAt.IsZero() && t.Before(s.StartsAt.Time) {
		return false
	}
	return s.EndsAt.IsZero() || t.Before(s.EndsAt.Time)
}

func (s *Silence) matches(service, signature string) bool {
	return matchOne(s.Matchers.Service, s.service, service) &&
		matchOne(s.Matchers.Signature, s.signature, signature)
}

// parseSchedule parses a maintenance schedule. @every is refused: it
// counts from when the daemon started, so the window would move with every
// restart.
func parseSchedule(spec string) (cron.Schedule, error) {
	if strings.Contains(spec, "@every") {
		return nil, fmt.Errorf("@every has no fixed start: use a cron expression such as \"0 2 * * sun\"")
	}
	return cron.ParseStandard(spec)
}

// window returns the start of the window containing t, if any. The window
// starting first after t-Duration is the only one that can contain t.
func (m *Maintenance) window(t time.Time) (time.Time, bool) {
	s := m.schedule
	if s == nil {
		var err error
		if s, err = parseSchedule(m.Schedule); err != nil {
			return time.Time{}, false
		}
	}
	d := m.Duration.D()
	if d <= 0 {
		return time.Time{}, false
	}
	start := s.Next(t.Add(-d))
	if start.IsZero() || start.After(t) {
		return time.Time{}, false
	}
	return start, true
}

// Silenced reports whether paging for a finding of (service, signature)
// at t is suppressed, by a silence or a maintenance window, and by which
// one, for the record. Silences are checked first, in file order.
func (c *Config) Silenced(service, signature string, t time.Time) (bool, string) {
	for i := range c.Silences {
		s := &c.Silences[i]
		if !s.active(t) || !s.matches(service, signature) {
			continue
		}
		why := fmt.Sprintf("silences[%d]", i)
		if s.Comment != "" {
			why += " " + s.Comment
		}
		if s.CreatedBy != "" {
			why += " (by " + s.CreatedBy + ")"
		}
		if !s.EndsAt.IsZero() {
			why += " until " + s.EndsAt.UTC().Format(time.RFC3339)
		}
		return true, why
	}
	for i := range c.Maintenance {
		m := &c.Maintenance[i]
		if len(m.Services) > 0 && !slices.Contains(m.Services, service) {
			continue
		}
		if start, ok := m.window(t); ok {
			end := start.Add(m.Duration.D())
			return true, fmt.Sprintf("maintenance[%d] %q until %s", i, m.Schedule, end.UTC().Format(time.RFC3339))
		}
	}
	return false, ""
}

// Shift is one support shift of a follow-the-sun rota. At each time Start
// names, the shift takes over and the daemon posts a handover digest to
// Channel: what is open, what was paged and acknowledged since the last
// shift began, and which customers are still waiting.
//
// A shift ends when the next one (in time, of any shift) starts, so a rota
// has no gaps to configure wrongly: APAC at 00:00 UTC, EMEA at 08:00
// Dublin, AMER at 11:00 New York. Start is a five-field cron expression,
// optionally prefixed with CRON_TZ=Zone, read like maintenance schedules:
// the hand-over follows the zone's clock across daylight saving time.
type Shift struct {
	Name string `yaml:"name"`
	// Channel is the Slack channel id (C0123…) or name of the shift that
	// takes over; it needs slack.bot_token.
	Channel string `yaml:"channel"`
	Start   string `yaml:"start"`

	schedule cron.Schedule // set when loaded from a file
}

// Schedule is when the shift starts. It parses Start when the shift was
// not loaded from a file; an invalid Start gives an error naming it.
func (s *Shift) Schedule() (cron.Schedule, error) {
	if s.schedule != nil {
		return s.schedule, nil
	}
	sched, err := parseSchedule(s.Start)
	if err != nil {
		return nil, fmt.Errorf("shift %q: start %q: %w", s.Name, s.Start, err)
	}
	return sched, nil
}
