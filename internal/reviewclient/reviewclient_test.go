package reviewclient

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/secure/authtest"
)

// TestReviewsAgainstAFakeAPIServer posts both reviews to the fake API
// server, which decodes them strictly as JSON of the group and version in
// the path and answers with the upstream types.
func TestReviewsAgainstAFakeAPIServer(t *testing.T) {
	api := authtest.NewAPIServer(t)
	api.SetToken("t", authenticationv1.UserInfo{Username: "alice", Groups: []string{"devs"}})
	api.SetPolicy(func(spec authorizationv1.SubjectAccessReviewSpec) bool { return spec.User == "alice" })
	client, err := New(api.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	review, err := client.CreateTokenReview(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: "t"}})
	if err != nil || !review.Status.Authenticated || review.Status.User.Username != "alice" {
		t.Errorf("TokenReview = %+v, %v", review, err)
	}
	review, err = client.CreateTokenReview(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: "other"}})
	if err != nil || review.Status.Authenticated || review.Status.Error == "" {
		t.Errorf("unknown token: %+v, %v", review, err)
	}
	for user, want := range map[string]bool{"alice": true, "bob": false} {
		sar, err := client.CreateSubjectAccessReview(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "nodes", Subresource: "stats"},
		}})
		if err != nil || sar.Status.Allowed != want {
			t.Errorf("SubjectAccessReview for %s = %+v, %v; want allowed %v", user, sar, err, want)
		}
	}
	if reviews := api.TakeReviews(); len(reviews) != 2 {
		t.Errorf("the API server saw %d SubjectAccessReviews, want 2", len(reviews))
	}
}

// TestRequestsAndStatusErrors checks the wire: paths, method, JSON bodies
// with their kind, user agent; and that an API server's Status answer
// becomes client-go's StatusError, which the server's retry policy reads.
func TestRequestsAndStatusErrors(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var typeMeta struct{ APIVersion, Kind string }
		_ = json.Unmarshal(body, &typeMeta)
		mu.Lock()
		seen = append(seen, strings.Join([]string{r.Method, r.URL.String(), r.Header.Get("Content-Type"), typeMeta.APIVersion, typeMeta.Kind,
			r.Header.Get("User-Agent")}, " "))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"slow down","reason":"TooManyRequests","details":{"retryAfterSeconds":1},"code":429}`)
	}))
	defer srv.Close()
	client, err := New(&rest.Config{Host: srv.URL, UserAgent: "test-agent", ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
	if err != nil {
		t.Fatal(err)
	}
	_, tokenErr := client.CreateTokenReview(context.Background(), &authenticationv1.TokenReview{})
	_, accessErr := client.CreateSubjectAccessReview(context.Background(), &authorizationv1.SubjectAccessReview{})
	for name, err := range map[string]error{"TokenReview": tokenErr, "SubjectAccessReview": accessErr} {
		if delay, ok := apierrors.SuggestsClientDelay(err); !apierrors.IsTooManyRequests(err) || !ok || delay != 1 {
			t.Errorf("%s: error %v (delay %d, %v), want a 429 StatusError suggesting 1s", name, err, delay, ok)
		}
	}
	want := []string{
		"POST /apis/authentication.k8s.io/v1/tokenreviews application/json authentication.k8s.io/v1 TokenReview test-agent",
		"POST /apis/authorization.k8s.io/v1/subjectaccessreviews application/json authorization.k8s.io/v1 SubjectAccessReview test-agent",
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
}
