// Package oidcfake is a small OpenID Connect provider for tests, served on
// loopback: discovery (OpenID Connect Discovery 1.0 §4), a JWKS, the
// authorization endpoint and the token endpoint of the authorization code
// flow (Core 1.0 §3.1) with PKCE (RFC 7636), and RS256-signed ID tokens.
//
// It checks every request the way a strict provider would (client_id,
// redirect_uri, response_type, scope, state, nonce, the single-use code,
// client authentication and the PKCE verifier) and records what a real
// provider would refuse, so a test that asserts Violations() is empty
// proves the relying party follows the specs, not just this fake.
//
// The user is already signed in at the provider (single sign-on): the
// authorization endpoint approves at once, as the test's User.
package oidcfake

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Client is the relying party registered at the fake.
type Client struct {
	ID, Secret, RedirectURI string
}

// User is who the fake signs in, with the claims it puts in the ID token.
type User struct {
	Subject       string
	Email         string
	EmailVerified bool
	Groups        []string
}

// Provider is the fake. Change User between logins to sign in someone
// else; Now is its clock for codes and token times.
type Provider struct {
	srv    *httptest.Server
	key    *rsa.PrivateKey
	client Client
	now    func() time.Time

	mu         sync.Mutex
	user       User
	codes      map[string]grant
	violations []string
	tokens     int
	tamper     func(claims map[string]any)
	forger     *rsa.PrivateKey
}

type grant struct {
	redirectURI, nonce, challenge string
	user                          User
	expires                       time.Time
}

// New starts a provider for client on loopback; it stops when the test
// ends. now is its clock (nil: time.Now).
func New(t testing.TB, client Client, user User, now func() time.Time) *Provider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if now == nil {
		now = time.Now
	}
	p := &Provider{key: key, client: client, user: user, now: now, codes: map[string]grant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// Issuer is the provider's issuer URL.
func (p *Provider) Issuer() string { return p.srv.URL }

// SetUser signs in someone else from the next authorization on.
func (p *Provider) SetUser(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.user = u
}

// SetRedirectURI registers the client's redirect URI, for a relying party
// whose address is known only once it listens.
func (p *Provider) SetRedirectURI(uri string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.client.RedirectURI = uri
}

// Tamper makes the next ID tokens carry claims changed by f (another
// audience, an old expiry, a wrong nonce), as a broken or malicious
// provider would, to show the relying party refuses them.
func (p *Provider) Tamper(f func(claims map[string]any)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tamper = f
}

// SignWithUnpublishedKey makes the next ID tokens signed by a key the
// JWKS does not hold, under the published key id.
func (p *Provider) SignWithUnpublishedKey(t testing.TB) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forger = k
}

// Violations lists the requests a strict provider would have refused.
func (p *Provider) Violations() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.violations)
}

// Tokens counts the ID tokens issued.
func (p *Provider) Tokens() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokens
}

func (p *Provider) violate(format string, a ...any) string {
	msg := fmt.Sprintf(format, a...)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.violations = append(p.violations, msg)
	return msg
}

func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.srv.URL,
		"authorization_endpoint":                p.srv.URL + "/authorize",
		"token_endpoint":                        p.srv.URL + "/token",
		"jwks_uri":                              p.srv.URL + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "email", "profile", "groups"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":      []string{"S256"},
		"grant_types_supported":                 []string{"authorization_code"},
	})
}

func (p *Provider) jwks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &p.key.PublicKey, KeyID: "k1", Algorithm: string(jose.RS256), Use: "sig"}}})
}

// authorize is Core 1.0 §3.1.2. A bad client_id or redirect_uri is an
// error page, never a redirect (§3.1.2.6); other errors go back to the
// client with error= and the state.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p.mu.Lock()
	client, user := p.client, p.user
	p.mu.Unlock()
	if q.Get("client_id") != client.ID {
		http.Error(w, p.violate("authorize: client_id %q is not registered", q.Get("client_id")), http.StatusBadRequest)
		return
	}
	if q.Get("redirect_uri") != client.RedirectURI {
		http.Error(w, p.violate("authorize: redirect_uri %q is not the registered %q", q.Get("redirect_uri"), client.RedirectURI), http.StatusBadRequest)
		return
	}
	fail := func(msg string) {
		p.violate("authorize: %s", msg)
		back, _ := url.Parse(client.RedirectURI)
		v := back.Query()
		v.Set("error", "invalid_request")
		v.Set("error_description", msg)
		v.Set("state", q.Get("state"))
		back.RawQuery = v.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	}
	switch {
	case q.Get("response_type") != "code":
		fail(fmt.Sprintf("response_type %q, want code", q.Get("response_type")))
	case !slices.Contains(strings.Fields(q.Get("scope")), "openid"):
		fail(fmt.Sprintf("scope %q lacks openid", q.Get("scope")))
	case len(q.Get("state")) < 16:
		fail("state missing or too short to resist guessing (CSRF)")
	case len(q.Get("nonce")) < 16:
		fail("nonce missing or too short to resist replay")
	case q.Get("code_challenge_method") != "S256":
		fail(fmt.Sprintf("code_challenge_method %q, want S256", q.Get("code_challenge_method")))
	case len(q.Get("code_challenge")) != 43:
		fail("code_challenge is not a base64url SHA-256")
	default:
		code := random()
		p.mu.Lock()
		p.codes[code] = grant{redirectURI: q.Get("redirect_uri"), nonce: q.Get("nonce"), challenge: q.Get("code_challenge"),
			user: user, expires: p.now().Add(time.Minute)}
		p.mu.Unlock()
		back, _ := url.Parse(client.RedirectURI)
		v := back.Query()
		v.Set("code", code)
		v.Set("state", q.Get("state"))
		back.RawQuery = v.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	}
}

// token is Core 1.0 §3.1.3 with RFC 7636 §4.6.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, oauthError("invalid_request", p.violate("token: %v", err)))
		return
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	p.mu.Lock()
	client := p.client
	g, ok := p.codes[r.PostForm.Get("code")]
	delete(p.codes, r.PostForm.Get("code")) // single use, even when refused
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case id != client.ID || secret != client.Secret:
		writeJSON(w, http.StatusUnauthorized, oauthError("invalid_client", p.violate("token: wrong client credentials for %q", id)))
	case r.PostForm.Get("grant_type") != "authorization_code":
		writeJSON(w, http.StatusBadRequest, oauthError("unsupported_grant_type", p.violate("token: grant_type %q", r.PostForm.Get("grant_type"))))
	case !ok || !p.now().Before(g.expires):
		writeJSON(w, http.StatusBadRequest, oauthError("invalid_grant", p.violate("token: unknown, used or expired code")))
	case r.PostForm.Get("redirect_uri") != g.redirectURI:
		writeJSON(w, http.StatusBadRequest, oauthError("invalid_grant", p.violate("token: redirect_uri differs from the authorization request's")))
	case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
		writeJSON(w, http.StatusBadRequest, oauthError("invalid_grant", p.violate("token: code_verifier does not match the code_challenge")))
	default:
		idt, err := p.sign(client.ID, g)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, oauthError("server_error", err.Error()))
			return
		}
		p.mu.Lock()
		p.tokens++
		p.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"access_token": random(), "token_type": "Bearer", "expires_in": 300, "id_token": idt})
	}
}

func (p *Provider) sign(aud string, g grant) (string, error) {
	now := p.now()
	claims := map[string]any{"iss": p.srv.URL, "sub": g.user.Subject, "aud": aud, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"nonce": g.nonce, "email": g.user.Email, "email_verified": g.user.EmailVerified, "groups": g.user.Groups}
	p.mu.Lock()
	tamper, key := p.tamper, p.key
	if p.forger != nil {
		key = p.forger
	}
	p.mu.Unlock()
	if tamper != nil {
		tamper(claims)
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	jws, err := s.Sign(b)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

func oauthError(code, desc string) map[string]string {
	return map[string]string{"error": code, "error_description": desc}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func random() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
