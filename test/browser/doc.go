// Package browser is the browser tier: headless Chromium (Debian's
// chromium package), driven over the DevTools protocol by chromedp, opens
// the page the real binary serves on "/" over real containerd pods and
// checks what a person would read: the page renders without script or
// policy errors, its numbers are /stats/summary's of the same snapshot,
// its table sorts, an OOM kill shows as a mark; screenshots are saved as
// artifacts ($KSS_ARTIFACTS, default bin/artifacts). TestPageWith500Pods
// opens it over 500 pods of a cgroup tree and logs how long the history and
// the page's renders take.
//
// It needs root (containerd, cgroups) and /usr/bin/chromium ($KSS_CHROMIUM
// names another); `make e2e-browser` installs both on a fresh machine.
package browser
