package evidence

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// findChromium returns the browser to drive, skipping the test when there
// is none, except in CI, which must run it.
func findChromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err == nil {
		return chromiumPath
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI must install chromium (apt-get install -y chromium)")
	}
	t.Skip("chromium is not installed: apt-get install -y chromium to run the browser test")
	return ""
}

// pageProblems collects what a real browser reports wrong with the page:
// console errors, uncaught exceptions, failed loads and error responses.
type pageProblems struct {
	mu   sync.Mutex
	list []string
}

func (p *pageProblems) add(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = append(p.list, fmt.Sprintf(format, a...))
}

func (p *pageProblems) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.list...)
}

// listen is called on chromedp's read loop, so it only records.
func (p *pageProblems) listen(ev any) {
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			p.add("console.%s: %s", ev.Type, strings.Join(args, " "))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil {
			text += " " + d.Exception.Description
		}
		p.add("exception at %s:%d: %s", d.URL, d.LineNumber, text)
	case *log.EventEntryAdded:
		if e := ev.Entry; e.Level == log.EntryLevelError {
			p.add("log (%s): %s %s", e.Source, e.Text, e.URL)
		}
	case *network.EventLoadingFailed:
		p.add("request failed: %s (%s)", ev.ErrorText, ev.Type)
	case *network.EventResponseReceived:
		if ev.Response != nil && ev.Response.Status >= 400 {
			p.add("HTTP %d for %s", ev.Response.Status, ev.Response.URL)
		}
	}
}

type imgState struct {
	Src          string `json:"src"`
	Complete     bool   `json:"complete"`
	NaturalWidth int    `json:"naturalWidth"`
}

// TestEvidencePageInBrowser opens the evidence page in headless Chromium:
// it must render, every chart must load, and the browser must report no
// error (the page has a sample log line that is a script tag, which must
// stay text). It leaves a full-page screenshot in $CULPRIT_ARTIFACTS.
func TestEvidencePageInBrowser(t *testing.T) {
	chromium := findChromium(t)

	mux, logs := server(t, fixture())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root, where the sandbox cannot start
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	var problems pageProblems
	if err := chromedp.Listen(bctx, problems.listen); err != nil {
		t.Fatalf("start chromium and listen: %v", err)
	}

	url := srv.URL + "/incidents/" + fridayID
	if err := chromedp.Do(bctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}

	h1, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.querySelector("h1").textContent`))
	if err != nil {
		t.Fatalf("read h1: %v", err)
	}
	if h1 != fridayHeadline {
		t.Errorf("h1 is\n%q\nwant\n%q", h1, fridayHeadline)
	}

	imgs, err := chromedp.Run(bctx, chromedp.Evaluate[[]imgState](
		`Array.from(document.images, i => ({src: i.getAttribute("src"), complete: i.complete, naturalWidth: i.naturalWidth}))`))
	if err != nil {
		t.Fatalf("read images: %v", err)
	}
	if len(imgs) != 2 {
		t.Errorf("page has %d images, want the rate and scope charts: %+v", len(imgs), imgs)
	}
	for _, im := range imgs {
		if !im.Complete || im.NaturalWidth == 0 {
			t.Errorf("image %s did not load (complete=%v, naturalWidth=%d)", im.Src, im.Complete, im.NaturalWidth)
		}
	}

	// The sample that is a script tag stays text: nothing ran, and the
	// page holds no script element at all.
	scripts, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.scripts.length`))
	if err != nil {
		t.Fatalf("count scripts: %v", err)
	}
	if scripts != 0 {
		t.Errorf("page has %d script elements, want none", scripts)
	}

	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	// Problems are read after the last command: the listener runs before
	// the reply to each command is read, so everything the page did up to
	// here has been seen.
	for _, p := range problems.all() {
		t.Errorf("browser reported: %s", p)
	}
	if t.Failed() {
		t.Logf("server log:\n%s", logs)
	}

	dir := os.Getenv("CULPRIT_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatalf("create artifacts directory: %v", err)
	}
	path := filepath.Join(dir, "evidence-page.png")
	if err := os.WriteFile(path, shot, 0o640); err != nil {
		t.Fatalf("write screenshot: %v", err)
	}
	t.Logf("screenshot of the evidence page: %s (%d bytes)", path, len(shot))

	// The server saw only requests it could answer.
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("server logged errors:\n%s", logs)
	}
}
