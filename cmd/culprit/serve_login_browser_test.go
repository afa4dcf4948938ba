package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/culprithq/culprit/escalate/webauth/oidcfake"
	"github.com/culprithq/culprit/rules"
)

// TestLoginInBrowser opens an evidence link in headless Chromium with the
// example configuration pointed at a loopback OpenID provider: the private
// listener sends the browser through the provider's login and back to the
// page, which then renders with its charts; the provider saw nothing a
// strict provider would refuse, and the session cookie is out of the
// page's reach (HttpOnly).
func TestLoginInBrowser(t *testing.T) {
	chromium := "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		p, err := exec.LookPath("chromium")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("CI must install chromium (apt-get install -y chromium)")
			}
			t.Skip("chromium is not installed")
		}
		chromium = p
	}
	clock := &facesClock{t: time.Now().UTC().Truncate(time.Second)}
	op := oidcfake.New(t, oidcfake.Client{ID: "culprit", Secret: facesEnv("CULPRIT_OIDC_CLIENT_SECRET")},
		oidcfake.User{Subject: "u-alice", Email: "alice@example.com", EmailVerified: true, Groups: []string{"sre"}}, clock.Now)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ext := "http://" + ln.Addr().String()
	op.SetRedirectURI(ext + "/auth/callback")
	s, in := exampleServer(t, clock, func(c *rules.Config) {
		c.UI.OIDC.Issuer = op.Issuer()
		c.UI.ExternalURL = ext
	})
	srv := &http.Server{Handler: s.ui, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	page := ext + "/incidents/" + in.ID
	if err := chromedp.Do(bctx, chromedp.Navigate(page)); err != nil {
		t.Fatalf("open %s: %v", page, err)
	}
	href, err := chromedp.Run(bctx, chromedp.Evaluate[string](`location.href`))
	if err != nil {
		t.Fatal(err)
	}
	if href != page {
		t.Errorf("after the login the browser is at %s, want %s", href, page)
	}
	text, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "upstream timeout") || !strings.Contains(text, "edge-router") {
		t.Errorf("the page does not show the incident:\n%.500s", text)
	}
	imgs, err := chromedp.Run(bctx, chromedp.Evaluate[[]int](`Array.from(document.images, i => i.complete ? i.naturalWidth : 0)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) == 0 || slices.Contains(imgs, 0) {
		t.Errorf("charts did not load behind the login: natural widths %v", imgs)
	}
	cookies, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.cookie`))
	if err != nil {
		t.Fatal(err)
	}
	if cookies != "" {
		t.Errorf("the page can read cookies %q: the session cookie must be HttpOnly", cookies)
	}
	if v := op.Violations(); len(v) > 0 {
		t.Errorf("a strict provider would refuse: %v", v)
	}
	if n := op.Tokens(); n != 1 {
		t.Errorf("%d ID tokens issued, want 1", n)
	}
}
