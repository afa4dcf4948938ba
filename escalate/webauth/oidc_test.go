package webauth

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/escalate/webauth/oidcfake"
)

// site is a private listener with an OIDC login in front of one page, and
// a provider fake it logs in through.
type site struct {
	srv   *httptest.Server
	op    *oidcfake.Provider
	clock *clock
}

func newSite(t *testing.T, user oidcfake.User, policy Policy) *site {
	t.Helper()
	c := &clock{t: time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)}
	client := oidcfake.Client{ID: "culprit", Secret: "client-secret"}
	op := oidcfake.New(t, client, user, c.Now)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	op.SetRedirectURI(srv.URL + CallbackPath)
	o, err := NewOIDC(OIDCConfig{Issuer: op.Issuer(), ClientID: client.ID, ClientSecret: client.Secret, ExternalURL: srv.URL,
		Scopes: []string{"email"}, GroupsClaim: "groups", SessionSecret: testSecret, SessionTTL: time.Hour, Now: c.Now,
		Logger: slog.New(slog.DiscardHandler)}, policy)
	if err != nil {
		t.Fatal(err)
	}
	o.Register(mux)
	gate := &Gate{Authenticators: []Authenticator{o}, Login: true}
	mux.Handle("GET /incidents/{id}", gate.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := UserFrom(r.Context())
		fmt.Fprintf(w, "evidence %s for %s", r.PathValue("id"), u.Name())
	})))
	return &site{srv: srv, op: op, clock: c}
}

func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

func get(t *testing.T, c *http.Client, url string, html bool) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if html {
		req.Header.Set("Accept", "text/html,application/xhtml+xml")
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestOIDCLogin(t *testing.T) {
	s := newSite(t, oidcfake.User{Subject: "u1", Email: "alice@example.com", EmailVerified: true}, Policy{Domains: []string{"example.com"}})
	b := browser(t)
	if code, _ := get(t, b, s.srv.URL+"/incidents/inc-1", false); code != http.StatusUnauthorized {
		t.Fatalf("API request without a session: %d, want 401", code)
	}
	code, body := get(t, b, s.srv.URL+"/incidents/inc-1", true)
	if code != http.StatusOK || body != "evidence inc-1 for alice@example.com" {
		t.Fatalf("after login: %d %q", code, body)
	}
	if v := s.op.Violations(); len(v) > 0 {
		t.Errorf("the provider would refuse: %v", v)
	}
	if n := s.op.Tokens(); n != 1 {
		t.Errorf("%d ID tokens issued, want 1", n)
	}
	// The session is a cookie now: no second trip to the provider.
	if code, _ := get(t, b, s.srv.URL+"/incidents/inc-2", false); code != http.StatusOK || s.op.Tokens() != 1 {
		t.Errorf("with a session: %d after %d tokens", code, s.op.Tokens())
	}
	s.clock.t = s.clock.t.Add(time.Hour)
	if code, _ := get(t, b, s.srv.URL+"/incidents/inc-1", false); code != http.StatusUnauthorized {
		t.Errorf("after the session's ttl: %d, want 401", code)
	}
}

func TestOIDCRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		user   oidcfake.User
		policy Policy
	}{
		{"other domain", oidcfake.User{Subject: "u2", Email: "mallory@example.org", EmailVerified: true}, Policy{Domains: []string{"example.com"}}},
		{"unverified email", oidcfake.User{Subject: "u3", Email: "mallory@example.com"}, Policy{Domains: []string{"example.com"}}},
		{"not in group", oidcfake.User{Subject: "u4", Email: "bob@example.com", EmailVerified: true, Groups: []string{"sales"}},
			Policy{Groups: []string{"sre", "support"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t, tc.user, tc.policy)
			b := browser(t)
			if code, body := get(t, b, s.srv.URL+"/incidents/inc-1", true); code != http.StatusForbidden || strings.Contains(body, "evidence") {
				t.Errorf("login: %d %q, want 403", code, body)
			}
			if code, _ := get(t, b, s.srv.URL+"/incidents/inc-1", false); code != http.StatusUnauthorized {
				t.Errorf("after a refused login: %d, want 401 (no session)", code)
			}
		})
	}
}

func TestOIDCCallbackChecks(t *testing.T) {
	s := newSite(t, oidcfake.User{Subject: "u1", Email: "alice@example.com", EmailVerified: true}, Policy{})
	noFollow := browser(t)
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	// A callback with no login started (a forged link) is refused.
	if code, _ := get(t, noFollow, s.srv.URL+CallbackPath+"?code=x&state=y", true); code != http.StatusBadRequest {
		t.Errorf("callback without a login cookie: %d, want 400", code)
	}
	// Start a login, then come back with another state.
	res, err := noFollow.Get(s.srv.URL + LoginURL("//evil.example/x"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), s.op.Issuer()+"/authorize?") {
		t.Fatalf("login: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if code, _ := get(t, noFollow, s.srv.URL+CallbackPath+"?code=x&state=forged", true); code != http.StatusBadRequest {
		t.Errorf("callback with a forged state: %d, want 400", code)
	}
	// A full login whose next is another site ends on this one.
	b := browser(t)
	var last *http.Request
	b.CheckRedirect = func(r *http.Request, _ []*http.Request) error { last = r; return nil }
	if code, _ := get(t, b, s.srv.URL+LoginURL("//evil.example/x"), true); code != http.StatusNotFound || last == nil ||
		!strings.HasPrefix(last.URL.String(), s.srv.URL+"/incidents") {
		t.Errorf("next=//evil.example ended at %v (%d), want this site's /incidents", last.URL, code)
	}
}

func TestSessionCookieIsForgeryProof(t *testing.T) {
	sl := sealer{testSecret}
	login, _ := sl.seal(loginCookie, pending{State: "s", Expires: 1 << 40})
	var s session
	if sl.open(sessionCookie, login, &s) == nil {
		t.Error("a login cookie opened as a session")
	}
	good, _ := sl.seal(sessionCookie, session{User: User{Subject: "u"}, Expires: 1 << 40})
	body, sig, _ := strings.Cut(good, ".")
	forged, _ := sealer{[]byte("another key of thirty-two bytes!")}.seal(sessionCookie, session{User: User{Subject: "admin"}, Expires: 1 << 40})
	fbody, _, _ := strings.Cut(forged, ".")
	for name, v := range map[string]string{"other key": forged, "swapped body": fbody + "." + sig, "no signature": body} {
		if sl.open(sessionCookie, v, &s) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := sl.open(sessionCookie, good, &s); err != nil || s.User.Subject != "u" {
		t.Errorf("genuine cookie: %v %+v", err, s)
	}
}

func TestTrustedProxy(t *testing.T) {
	p := &Proxy{From: []netip.Prefix{netip.MustParsePrefix("10.0.0.5/32"), netip.MustParsePrefix("fd00::/8")},
		UserHeader: "X-Forwarded-User", EmailHeader: "X-Forwarded-Email", GroupsHeader: "X-Forwarded-Groups",
		Policy: Policy{Domains: []string{"example.com"}}}
	gate := &Gate{Authenticators: []Authenticator{p, Token{Secret: "scrape-token", Subject: "prometheus"}}}
	h := gate.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := UserFrom(r.Context())
		fmt.Fprint(w, u.Name())
	}))
	for _, tc := range []struct {
		name, remote string
		headers      map[string]string
		want         int
		user         string
	}{
		{"from the proxy", "10.0.0.5:4711", map[string]string{"X-Forwarded-User": "alice", "X-Forwarded-Email": "alice@example.com"}, 200, "alice@example.com"},
		{"from the proxy over IPv6", "[fd00::1]:4711", map[string]string{"X-Forwarded-User": "alice", "X-Forwarded-Email": "alice@example.com"}, 200, "alice@example.com"},
		{"IPv4-mapped proxy address", "[::ffff:10.0.0.5]:4711", map[string]string{"X-Forwarded-User": "a", "X-Forwarded-Email": "a@example.com"}, 200, "a@example.com"},
		{"headers from elsewhere", "10.0.0.6:4711", map[string]string{"X-Forwarded-User": "alice", "X-Forwarded-Email": "alice@example.com"}, 401, ""},
		{"spoofed X-Forwarded-For", "192.0.2.1:4711", map[string]string{"X-Forwarded-For": "10.0.0.5", "X-Forwarded-User": "alice", "X-Forwarded-Email": "alice@example.com"}, 401, ""},
		{"proxy without a user", "10.0.0.5:4711", nil, 403, ""},
		{"domain not allowed", "10.0.0.5:4711", map[string]string{"X-Forwarded-User": "m", "X-Forwarded-Email": "m@example.org"}, 403, ""},
		{"scrape token", "192.0.2.9:4711", map[string]string{"Authorization": "Bearer scrape-token"}, 200, "prometheus"},
		{"wrong token", "192.0.2.9:4711", map[string]string{"Authorization": "Bearer guess"}, 403, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			r.RemoteAddr = tc.remote
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want || (tc.want == 200 && w.Body.String() != tc.user) {
				t.Errorf("%d %q, want %d %q", w.Code, w.Body, tc.want, tc.user)
			}
		})
	}
}

// TestOIDCRefusesBadIDTokens: an ID token for another client, expired,
// with another nonce, from another issuer or signed with a key the
// provider does not publish gives no session.
func TestOIDCRefusesBadIDTokens(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(c map[string]any)
		forge  bool
	}{
		{"another audience", func(c map[string]any) { c["aud"] = "someone-else" }, false},
		{"expired", func(c map[string]any) { c["exp"] = c["iat"].(int64) - 60 }, false},
		{"another nonce", func(c map[string]any) { c["nonce"] = "replayed-from-another-login" }, false},
		{"another issuer", func(c map[string]any) { c["iss"] = "https://evil.example" }, false},
		{"unpublished key", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSite(t, oidcfake.User{Subject: "u1", Email: "alice@example.com", EmailVerified: true}, Policy{})
			s.op.Tamper(tc.tamper)
			if tc.forge {
				s.op.SignWithUnpublishedKey(t)
			}
			b := browser(t)
			if code, body := get(t, b, s.srv.URL+"/incidents/inc-1", true); code != http.StatusForbidden || strings.Contains(body, "evidence") {
				t.Errorf("login: %d %q, want 403", code, body)
			}
			if code, _ := get(t, b, s.srv.URL+"/incidents/inc-1", false); code != http.StatusUnauthorized {
				t.Errorf("after the refused token: %d, want 401", code)
			}
		})
	}
}
