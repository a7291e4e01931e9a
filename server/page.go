package server

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// pagePattern serves the page on "/" alone: "/{$}" matches no other path,
// so that unknown paths keep net/http's 404 as on the kubelet. The secure
// port authorizes it as nodes/stats (auth.go).
const pagePattern = "/{$}"

// ui holds the page: index.html with page.css and page.js inlined into it
// when the handler is built, so that the page is one document and fetches
// nothing but its data (/history, same origin).
//
//go:embed ui/index.html ui/page.css ui/page.js
var ui embed.FS

// pageHandler serves the page: GET and HEAD, with a content security
// policy that allows exactly its own inline style and script and
// connections to its own origin.
type pageHandler struct {
	body []byte
	etag string
	csp  string
}

// installPage adds the page on "/" and its data on /history.
func installPage(c filteringContainer, cfg Config, src SnapshotSource) {
	c.Handle(pagePattern, newPageHandler())
	installHistory(c, cfg, src)
}

func newPageHandler() *pageHandler {
	style, script := uiFile("ui/page.css"), uiFile("ui/page.js")
	if strings.Contains(strings.ToLower(script), "</script") || strings.Contains(strings.ToLower(style), "</style") {
		panic("server/ui: page.js or page.css would end its element early")
	}
	html := strings.NewReplacer("{{style}}", style, "{{script}}", script).Replace(uiFile("ui/index.html"))
	body := []byte(html)
	sum := sha256.Sum256(body)
	return &pageHandler{
		body: body,
		etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
		csp: fmt.Sprintf("default-src 'none'; script-src '%s'; style-src '%s'; connect-src 'self'; img-src data:; "+
			"base-uri 'none'; form-action 'none'; frame-ancestors 'none'", cspHash(script), cspHash(style)),
	}
}

// uiFile reads an embedded file. The names are fixed and checked by the
// compiler's go:embed, so a failure is a broken build.
func uiFile(name string) string {
	data, err := ui.ReadFile(name)
	if err != nil {
		panic(fmt.Sprintf("server/ui: %v", err))
	}
	return string(data)
}

func cspHash(content string) string {
	sum := sha256.Sum256([]byte(content))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

func (p *pageHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	header := w.Header()
	header.Set("Content-Type", "text/html; charset=utf-8")
	header.Set("Content-Security-Policy", p.csp)
	header.Set("X-Content-Type-Options", "nosniff")
	header.Set("Referrer-Policy", "no-referrer")
	header.Set("Cache-Control", "no-cache")
	header.Set("ETag", p.etag)
	// ServeContent answers HEAD and If-None-Match (304) for us.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(p.body))
}
