package server

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// muxNotFound is the body net/http's ServeMux answers for a path nothing is
// registered on; every registered path answers something else (a route's
// own 404 from go-restful included). The mux also answers 301 for a
// subtree's root without its slash.
const muxNotFound = "404 page not found\n"

// servedPaths returns every path handler serves, found without a list that
// could go stale: each path-like string literal of this package's non-test
// files (route paths, web service roots, handler patterns), alone, with a
// slash and joined to another one (web service root plus route), with path
// parameters filled in, is requested; those net/http's mux does not answer
// itself are served. Paths below a subtree pattern come out many times over;
// requests are cheap. extra adds paths whose literal lives in a library
// (the healthz checks).
func servedPaths(t *testing.T, handler http.Handler, extra ...string) []string {
	t.Helper()
	pathParam := regexp.MustCompile(`\{[^}]*\}`) // {podName}
	literals := pathLiterals(t)
	candidates := map[string]bool{}
	for _, a := range literals {
		candidates[a] = true
		candidates[a+"/"] = true
		for _, b := range literals {
			candidates[strings.TrimSuffix(a, "/")+b] = true
		}
	}
	for _, p := range extra {
		candidates[p] = true
	}
	var served []string
	for candidate := range candidates {
		path := pathParam.ReplaceAllString(candidate, "x")
		if strings.Contains(path, "//") {
			continue // the mux redirects it to the clean path
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		muxAnswered := rec.Code == http.StatusNotFound && rec.Body.String() == muxNotFound ||
			rec.Code == http.StatusMovedPermanently // "/spec" to "/spec/", before any handler
		if !muxAnswered {
			served = append(served, path)
		}
	}
	slices.Sort(served)
	return slices.Compact(served)
}

// pathLiterals lists the string literals starting with "/" in this
// package's non-test Go files.
func pathLiterals(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var literals []string
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(parsed, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			if value, err := strconv.Unquote(lit.Value); err == nil && strings.HasPrefix(value, "/") && !strings.ContainsAny(value, " %\n") {
				literals = append(literals, value)
			}
			return true
		})
	}
	if len(literals) == 0 {
		t.Fatal("no path literals found in the package's files")
	}
	return literals
}
