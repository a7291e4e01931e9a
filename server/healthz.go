package server

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"k8s.io/klog/v2"
)

// housekeepingCheck is the name of the check that fails when the provider's
// housekeeping stalls; it is served at /healthz/housekeeping too.
const housekeepingCheck = "housekeeping"

// healthzPath is where the checks are served, each also on its own below it.
const healthzPath = "/healthz"

// healthCheck is a named check (healthz.HealthChecker).
type healthCheck struct {
	name  string
	check func(*http.Request) error
}

// pingCheck always passes: it says that the process serves.
func pingCheck() healthCheck {
	return healthCheck{name: "ping", check: func(*http.Request) error { return nil }}
}

// handleMux is where installHealthz registers its handlers: a go-restful
// container (behind its filters) or a ServeMux.
type handleMux interface {
	Handle(pattern string, handler http.Handler)
}

// installHealthz installs the kubelet's healthz handlers, so that /healthz,
// ?verbose, ?exclude and /healthz/<check> answer in the format of
// k8s.io/apiserver/pkg/server/healthz, byte for byte (healthz_test.go
// compares them).
func installHealthz(c handleMux, health HealthChecker) {
	checks := []healthCheck{pingCheck()}
	if health != nil {
		checks = append(checks, healthCheck{name: housekeepingCheck, check: func(*http.Request) error {
			return health.Healthy()
		}})
	}
	installHealthChecks(c, checks)
}

// installHealthChecks is healthz.InstallHandler: /healthz runs every check,
// /healthz/<name> the one.
func installHealthChecks(c handleMux, checks []healthCheck) {
	c.Handle(healthzPath, rootHealthHandler(klog.Background(), strings.TrimPrefix(healthzPath, "/"), checks))
	for _, check := range checks {
		c.Handle(healthzPath+"/"+check.name, checkHandler(check.check))
	}
}

// rootHealthHandler runs the checks not excluded (?exclude=<name>, as often
// as needed): 200 "ok" when all pass, with one line per check under
// ?verbose; 500 with every line when one fails, its reason withheld from
// the body (the endpoint is public) and logged instead.
func rootHealthHandler(logger klog.Logger, name string, checks []healthCheck) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		excluded := r.URL.Query()["exclude"]
		unknownExcluded := map[string]bool{}
		for _, e := range excluded {
			unknownExcluded[e] = true
		}
		var out, failedLog bytes.Buffer
		var failed []string
		for _, check := range checks {
			if slices.Contains(excluded, check.name) {
				delete(unknownExcluded, check.name)
				fmt.Fprintf(&out, "[+]%s excluded: ok\n", check.name)
				continue
			}
			if err := check.check(r); err != nil {
				fmt.Fprintf(&out, "[-]%s failed: reason withheld\n", check.name)
				fmt.Fprintf(&failedLog, "[-]%s failed: %v\n", check.name, err)
				failed = append(failed, check.name)
				continue
			}
			fmt.Fprintf(&out, "[+]%s ok\n", check.name)
		}
		if len(unknownExcluded) > 0 {
			fmt.Fprintf(&out, "warn: some health checks cannot be excluded: no matches for %s\n", quotedSorted(unknownExcluded))
		}
		if len(failed) > 0 {
			logger.V(2).Info(fmt.Sprintf("%s check failed: %s\n%v", strings.Join(failed, ","), name, failedLog.String()))
			http.Error(w, fmt.Sprintf("%s%s check failed", out.String(), name), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if _, verbose := r.URL.Query()["verbose"]; !verbose {
			fmt.Fprint(w, "ok")
			return
		}
		_, _ = out.WriteTo(w)
		fmt.Fprintf(w, "%s check passed\n", name)
	}
}

// checkHandler serves one check: "ok", or 500 with its error.
func checkHandler(check func(*http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := check(r); err != nil {
			http.Error(w, fmt.Sprintf("internal server error: %v", err), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	}
}

// quotedSorted is the set's names sorted, quoted and comma-separated.
func quotedSorted(set map[string]bool) string {
	names := make([]string, 0, len(set))
	for name := range set {
		names = append(names, name)
	}
	slices.Sort(names)
	for i, name := range names {
		names[i] = fmt.Sprintf("%q", name)
	}
	return strings.Join(names, ",")
}
