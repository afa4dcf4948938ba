package webauth

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// User is who a request was authenticated as.
type User struct {
	// Subject is the provider's stable id, or the proxy's user header.
	Subject string   `json:"sub"`
	Email   string   `json:"email,omitempty"`
	Groups  []string `json:"groups,omitempty"`
}

// Name is how the user is shown and logged.
func (u User) Name() string {
	if u.Email != "" {
		return u.Email
	}
	return u.Subject
}

type userKey struct{}

// UserFrom returns the user a gated request was authenticated as.
func UserFrom(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userKey{}).(User)
	return u, ok
}

// Policy admits users by email domain and group; empty lists admit
// everyone the login accepts.
type Policy struct {
	Domains []string
	Groups  []string
}

// Allow says why u is refused, or nil. An email is matched on its domain
// case-insensitively; subdomains are not the domain.
func (p Policy) Allow(u User) error {
	if len(p.Domains) > 0 {
		_, domain, ok := strings.Cut(u.Email, "@")
		if !ok || !slices.ContainsFunc(p.Domains, func(d string) bool { return strings.EqualFold(strings.TrimSpace(d), domain) }) {
			return fmt.Errorf("%q is not in an allowed email domain", u.Name())
		}
	}
	if len(p.Groups) > 0 && !slices.ContainsFunc(u.Groups, func(g string) bool { return slices.Contains(p.Groups, g) }) {
		return fmt.Errorf("%q is in none of the allowed groups", u.Name())
	}
	return nil
}
