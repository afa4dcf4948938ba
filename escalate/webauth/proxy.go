package webauth

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// Proxy believes an authenticating reverse proxy (oauth2-proxy, an
// ingress with external auth) about who the user is, the way oauth2-proxy
// passes it on: X-Forwarded-User, X-Forwarded-Email, X-Forwarded-Groups.
// Anyone can send those headers, so they count only on a connection from
// one of the proxies' addresses; culprit must then not be reachable
// around the proxy by anything else listed.
type Proxy struct {
	// From are the proxies' addresses; a request from anywhere else is
	// not authenticated by its headers.
	From []netip.Prefix
	// UserHeader is required; EmailHeader and GroupsHeader (comma
	// separated) may be empty.
	UserHeader, EmailHeader, GroupsHeader string
	// Policy admits users by domain and group.
	Policy Policy
}

// ErrNotFromProxy means the request did not come from a trusted proxy.
var ErrNotFromProxy = errors.New("not from a trusted proxy")

// Authenticate returns the user the proxy names. The connection's own
// peer address is what counts, never X-Forwarded-For, which the client
// writes.
func (p *Proxy) Authenticate(r *http.Request) (User, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return User{}, ErrNotFromProxy
	}
	addr = addr.Unmap()
	if !slices.ContainsFunc(p.From, func(pf netip.Prefix) bool { return pf.Contains(addr) }) {
		return User{}, ErrNotFromProxy
	}
	u := User{Subject: strings.TrimSpace(r.Header.Get(p.UserHeader))}
	if u.Subject == "" {
		return User{}, errors.New("trusted proxy sent no " + p.UserHeader)
	}
	if p.EmailHeader != "" {
		u.Email = strings.TrimSpace(r.Header.Get(p.EmailHeader))
	}
	if p.GroupsHeader != "" {
		for g := range strings.SplitSeq(r.Header.Get(p.GroupsHeader), ",") {
			if g = strings.TrimSpace(g); g != "" {
				u.Groups = append(u.Groups, g)
			}
		}
	}
	if err := p.Policy.Allow(u); err != nil {
		return User{}, err
	}
	return u, nil
}
