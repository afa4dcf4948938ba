package webauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Paths the login serves on the private listener; they are reachable
// without a session, and nothing else is.
const (
	LoginPath    = "/auth/login"
	CallbackPath = "/auth/callback"
	LogoutPath   = "/auth/logout"
)

const (
	sessionCookie = "culprit_session"
	loginCookie   = "culprit_login"
	// loginTTL bounds the round trip to the provider: long enough to type
	// a password and answer a second factor.
	loginTTL = 10 * time.Minute
)

// OIDCConfig is what NewOIDC needs.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL; discovery reads
	// Issuer/.well-known/openid-configuration.
	Issuer       string
	ClientID     string
	ClientSecret string
	// ExternalURL is where browsers reach culprit's private listener;
	// the provider redirects to ExternalURL + CallbackPath, and an https
	// URL makes the cookies Secure.
	ExternalURL string
	// Scopes are requested besides openid.
	Scopes []string
	// GroupsClaim names the ID token claim listing the user's groups.
	GroupsClaim string
	// SessionSecret signs the cookies; at least MinSecret bytes.
	SessionSecret []byte
	// SessionTTL is how long a login lasts.
	SessionTTL time.Duration
	// Client reaches the provider; nil means one with a 10 s timeout.
	Client *http.Client
	// Now is the clock for sessions and ID token expiry; nil is time.Now.
	Now func() time.Time
	// Logger receives refused logins; nil means slog.Default().
	Logger *slog.Logger
}

// OIDC logs people in with an OpenID Connect provider: the authorization
// code flow with state, nonce and PKCE (S256), an ID token verified
// against the provider's keys, and a signed session cookie.
//
// Discovery happens at the first login, not at start-up, and is retried
// until it succeeds: culprit must start and page while the identity
// provider is down; only its pages wait for it.
type OIDC struct {
	cfg    OIDCConfig
	seal   sealer
	secure bool
	policy Policy
	log    *slog.Logger

	mu       sync.Mutex
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// NewOIDC checks cfg; it does not contact the provider.
func NewOIDC(cfg OIDCConfig, policy Policy) (*OIDC, error) {
	var errs []error
	if cfg.Issuer == "" {
		errs = append(errs, errors.New("no issuer"))
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		errs = append(errs, errors.New("no client id or secret"))
	}
	ext, err := url.Parse(cfg.ExternalURL)
	if err != nil || (ext.Scheme != "http" && ext.Scheme != "https") || ext.Host == "" {
		errs = append(errs, fmt.Errorf("external URL %q is not an absolute http(s) URL", cfg.ExternalURL))
	}
	if len(cfg.SessionSecret) < MinSecret {
		errs = append(errs, fmt.Errorf("session secret shorter than %d bytes", MinSecret))
	}
	if cfg.SessionTTL <= 0 {
		errs = append(errs, errors.New("session ttl must be positive"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("oidc login: %w", errors.Join(errs...))
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.ExternalURL = strings.TrimRight(cfg.ExternalURL, "/")
	return &OIDC{cfg: cfg, seal: sealer{cfg.SessionSecret}, secure: ext.Scheme == "https", policy: policy, log: cfg.Logger}, nil
}

// provider discovers the provider once it can. The provider keeps the
// context it was discovered with for fetching keys later, so it gets one
// that outlives this request; the client's timeout bounds each fetch.
func (o *OIDC) provider(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.oauth != nil {
		return o.oauth, o.verifier, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(context.WithoutCancel(ctx), o.cfg.Client), o.cfg.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("oidc discovery at %s: %w", o.cfg.Issuer, err)
	}
	o.oauth = &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: o.cfg.ExternalURL + CallbackPath, Scopes: append([]string{oidc.ScopeOpenID}, o.cfg.Scopes...)}
	o.verifier = p.Verifier(&oidc.Config{ClientID: o.cfg.ClientID, Now: o.cfg.Now})
	return o.oauth, o.verifier, nil
}

// Register adds the login routes to mux.
func (o *OIDC) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+LoginPath, o.login)
	mux.HandleFunc("GET "+CallbackPath, o.callback)
	mux.HandleFunc("POST "+LogoutPath, o.logout)
}

// pending is the login cookie: what the callback must find again.
type pending struct {
	State    string `json:"state"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"pkce"`
	Next     string `json:"next"`
	Expires  int64  `json:"exp"`
}

func (o *OIDC) login(w http.ResponseWriter, r *http.Request) {
	oc, _, err := o.provider(r.Context())
	if err != nil {
		o.log.Error("oidc login", "err", err)
		http.Error(w, "the identity provider cannot be reached; try again shortly", http.StatusServiceUnavailable)
		return
	}
	p := pending{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(), Next: localPath(r.URL.Query().Get("next")),
		Expires: o.cfg.Now().Add(loginTTL).Unix()}
	v, err := o.seal.seal(loginCookie, p)
	if err != nil {
		http.Error(w, "cannot start the login", http.StatusInternalServerError)
		return
	}
	// Lax, not Strict: the provider's redirect back is a top-level
	// navigation from another site, and must carry this cookie.
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: v, Path: CallbackPath, MaxAge: int(loginTTL.Seconds()),
		HttpOnly: true, Secure: o.secure, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, oc.AuthCodeURL(p.State, oidc.Nonce(p.Nonce), oauth2.S256ChallengeOption(p.Verifier)), http.StatusFound)
}

func (o *OIDC) callback(w http.ResponseWriter, r *http.Request) {
	refuse := func(status int, msg string, err error) {
		o.log.Warn("oidc login refused", "reason", msg, "err", err)
		http.Error(w, "login failed: "+msg, status)
	}
	c, err := r.Cookie(loginCookie)
	var p pending
	if err != nil || o.seal.open(loginCookie, c.Value, &p) != nil || !o.cfg.Now().Before(time.Unix(p.Expires, 0)) {
		refuse(http.StatusBadRequest, "no login in progress (or it took over 10 minutes): start again", err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: CallbackPath, MaxAge: -1, HttpOnly: true, Secure: o.secure, SameSite: http.SameSiteLaxMode})
	q := r.URL.Query()
	if !hmac.Equal([]byte(q.Get("state")), []byte(p.State)) {
		refuse(http.StatusBadRequest, "state does not match", nil)
		return
	}
	if e := q.Get("error"); e != "" {
		refuse(http.StatusForbidden, "the provider said "+e, errors.New(q.Get("error_description")))
		return
	}
	oc, verifier, err := o.provider(r.Context())
	if err != nil {
		refuse(http.StatusServiceUnavailable, "the identity provider cannot be reached", err)
		return
	}
	tok, err := oc.Exchange(oidc.ClientContext(r.Context(), o.cfg.Client), q.Get("code"), oauth2.VerifierOption(p.Verifier))
	if err != nil {
		refuse(http.StatusBadGateway, "the code could not be exchanged", err)
		return
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		refuse(http.StatusBadGateway, "the provider returned no ID token", nil)
		return
	}
	idt, err := verifier.Verify(r.Context(), raw)
	if err != nil {
		refuse(http.StatusForbidden, "the ID token is not valid", err)
		return
	}
	if !hmac.Equal([]byte(idt.Nonce), []byte(p.Nonce)) {
		refuse(http.StatusForbidden, "the ID token's nonce does not match", nil)
		return
	}
	u, err := o.user(idt)
	if err == nil {
		err = o.policy.Allow(u)
	}
	if err != nil {
		refuse(http.StatusForbidden, err.Error(), nil)
		return
	}
	v, err := o.seal.seal(sessionCookie, session{User: u, Expires: o.cfg.Now().Add(o.cfg.SessionTTL).Unix()})
	if err != nil {
		refuse(http.StatusInternalServerError, "cannot write the session", err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: v, Path: "/", MaxAge: int(o.cfg.SessionTTL.Seconds()),
		HttpOnly: true, Secure: o.secure, SameSite: http.SameSiteLaxMode})
	o.log.Info("oidc login", "user", u.Name())
	http.Redirect(w, r, p.Next, http.StatusFound)
}

// user reads the claims culprit uses. An email the provider says is not
// verified is dropped, so it cannot pass allowed_domains.
func (o *OIDC) user(idt *oidc.IDToken) (User, error) {
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return User{}, fmt.Errorf("ID token claims: %w", err)
	}
	u := User{Subject: idt.Subject}
	if e, _ := claims["email"].(string); e != "" {
		if v, ok := claims["email_verified"].(bool); !ok || v {
			u.Email = e
		}
	}
	if gs, ok := claims[o.cfg.GroupsClaim].([]any); ok {
		for _, g := range gs {
			if s, ok := g.(string); ok {
				u.Groups = append(u.Groups, s)
			}
		}
	}
	return u, nil
}

func (o *OIDC) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, Secure: o.secure, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// ErrNoSession means the request carries no valid session cookie.
var ErrNoSession = errors.New("no valid session")

// Authenticate returns the user of r's session cookie. The policy is
// checked again, so narrowing allowed_domains takes effect at once.
func (o *OIDC) Authenticate(r *http.Request) (User, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return User{}, ErrNoSession
	}
	var s session
	if err := o.seal.open(sessionCookie, c.Value, &s); err != nil || !s.valid(o.cfg.Now()) {
		return User{}, ErrNoSession
	}
	if err := o.policy.Allow(s.User); err != nil {
		return User{}, err
	}
	return s.User, nil
}

// LoginURL is where a browser without a session is sent, coming back to
// next afterwards.
func LoginURL(next string) string { return LoginPath + "?next=" + url.QueryEscape(next) }

// localPath keeps next only if it is a path on this site, so the login
// cannot be used to redirect someone elsewhere ("//evil.example" and
// "/\evil.example" are other sites to a browser).
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/incidents"
	}
	return next
}

func random() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand's contract since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}
