package browser

import (
	"context"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const (
	// chromiumEnv names a Chromium other than Debian's /usr/bin/chromium.
	chromiumEnv = "KSS_CHROMIUM"
	// artifactsEnv names the directory screenshots go to; default
	// bin/artifacts of the repository.
	artifactsEnv = "KSS_ARTIFACTS"
	// actionLimit bounds each browser step: a page load, a click, an
	// evaluation. Over 500 pods the slowest, a full-page screenshot, takes
	// a second or two.
	actionLimit = 30 * time.Second
)

// browser is one headless Chromium with one tab.
type browser struct {
	ctx    context.Context
	errors *pageErrors
}

// startBrowser starts Chromium with a viewport of width×height, a fresh
// profile, and the flags this closed network needs (no background
// connections, no QUIC, no component updates), and stops it at cleanup.
func startBrowser(t testing.TB, width, height int) *browser {
	t.Helper()
	path := os.Getenv(chromiumEnv)
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no Chromium at %s (%v): `make e2e-browser` installs Debian's chromium, or set %s", path, err, chromiumEnv)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root, in a container without user namespaces
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	// The first run starts the browser and ties it to ctx itself: a
	// deadline on this one would end the browser with it.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start %s: %v", path, err)
	}
	b := &browser{ctx: ctx, errors: &pageErrors{}}
	collected := b.errors.collect(chromedp.Console(ctx))
	t.Cleanup(func() {
		cancel()
		<-collected
		cancelAlloc()
	})
	return b
}

// run performs actions within actionLimit.
func (b *browser) run(t testing.TB, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionLimit)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// evaluate evaluates a JavaScript expression in the page within
// actionLimit.
func evaluate[T any](t testing.TB, b *browser, expression string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionLimit)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expression))
	if err != nil {
		t.Fatalf("evaluate %s: %v", firstLine(expression), err)
	}
	return v
}

// screenshot saves the viewport, or the whole page, as a PNG artifact and
// returns its path.
func (b *browser) screenshot(t testing.TB, name string, fullPage bool) string {
	t.Helper()
	action := chromedp.CaptureScreenshot()
	if fullPage {
		action = chromedp.FullScreenshot(100) // quality 100 is PNG
	}
	ctx, cancel := context.WithTimeout(b.ctx, actionLimit)
	defer cancel()
	png, err := chromedp.Run(ctx, action)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := os.Getenv(artifactsEnv)
	if dir == "" {
		dir = filepath.Join("..", "..", "bin", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", abs)
	return abs
}

// pageErrors collects what the page would show a developer in red: script
// exceptions, console.error, and the browser's own error entries (a
// refused content security policy, a failed request).
type pageErrors struct {
	mu     sync.Mutex
	errors []string
}

// collect reads messages until they end (the browser's context ends) and
// closes the returned channel then.
func (p *pageErrors) collect(messages iter.Seq2[chromedp.ConsoleMessage, error]) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				p.mu.Lock()
				p.errors = append(p.errors, m.String())
				p.mu.Unlock()
			}
		}
	}()
	return done
}

func (p *pageErrors) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errors...)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + "…"
	}
	return s
}
