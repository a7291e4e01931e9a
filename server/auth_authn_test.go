package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/secure/authtest"
)

// withPeer is a request whose TLS connection presented cert's chain.
func withPeer(t *testing.T, cert *tls.Certificate) *http.Request {
	t.Helper()
	r := httptest.NewRequest("GET", "/stats/summary", nil)
	r.TLS = &tls.ConnectionState{}
	if cert != nil {
		for _, der := range cert.Certificate {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			r.TLS.PeerCertificates = append(r.TLS.PeerCertificates, c)
		}
	}
	return r
}

func loadCA(t *testing.T, ca *authtest.CA) *clientCAFile {
	t.Helper()
	c, err := newClientCAFile(discardLogger(), writeCA(t, t.TempDir(), ca))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestX509Authenticator(t *testing.T) {
	root, other := authtest.NewCA(t, "root"), authtest.NewCA(t, "other")
	intermediate := root.Intermediate(t, "intermediate")
	authn := x509Authenticator(loadCA(t, root))
	uidName := func(uid string) pkix.AttributeTypeAndValue {
		return pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57683, 2}, Value: uid}
	}
	clientAuth := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	withoutChain := func(c tls.Certificate) tls.Certificate { c.Certificate = c.Certificate[:1]; return c }

	type want struct {
		user   string
		uid    string
		groups []string
		ok     bool
		err    string
	}
	for _, tt := range []struct {
		name string
		cert *tls.Certificate
		want want
	}{
		{"no certificate", nil, want{}},
		{"CN and O", ptr(root.ClientCert(t, "alice", "team-a", "team-b")), want{user: "alice", groups: []string{"team-a", "team-b"}, ok: true}},
		{"through an intermediate the client sends", ptr(intermediate.ClientCert(t, "bob")), want{user: "bob", ok: true}},
		{"intermediate not sent", ptr(withoutChain(intermediate.ClientCert(t, "bob"))), want{err: "verifying certificate SN="}},
		{"another CA", ptr(other.ClientCert(t, "alice")), want{err: "certificate signed by unknown authority"}},
		{"not for client auth", ptr(root.Issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "server"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})), want{err: "incompatible key usage"}},
		{"no CN", ptr(root.Issue(t, &x509.Certificate{Subject: pkix.Name{Organization: []string{"g"}}, ExtKeyUsage: clientAuth})), want{}},
		{"UID attribute", ptr(root.Issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "carol", ExtraNames: []pkix.AttributeTypeAndValue{uidName("c-123")}},
			ExtKeyUsage: clientAuth})), want{user: "carol", uid: "c-123", ok: true}},
		{"two UID attributes", ptr(root.Issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "dave",
			ExtraNames: []pkix.AttributeTypeAndValue{uidName("1"), uidName("2")}}, ExtKeyUsage: clientAuth})), want{err: "expected 1 UID"}},
		{"empty UID attribute", ptr(root.Issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "erin",
			ExtraNames: []pkix.AttributeTypeAndValue{uidName("")}}, ExtKeyUsage: clientAuth})), want{err: "UID cannot be an empty string"}},
	} {
		u, ok, err := authn(withPeer(t, tt.cert))
		if tt.want.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.want.err) || ok {
				t.Errorf("%s: ok %v, error %v, want an error containing %q", tt.name, ok, err, tt.want.err)
			}
			continue
		}
		if err != nil || ok != tt.want.ok {
			t.Errorf("%s: ok %v, error %v, want ok %v", tt.name, ok, err, tt.want.ok)
			continue
		}
		if !ok {
			continue
		}
		fingerprint := sha256.Sum256(tt.cert.Certificate[0])
		wantUser := userInfo{Name: tt.want.user, UID: tt.want.uid, Groups: tt.want.groups,
			Extra: map[string][]string{credentialIDKey: {"X509SHA256=" + hex.EncodeToString(fingerprint[:])}}}
		if !reflect.DeepEqual(*u, wantUser) {
			t.Errorf("%s: user %+v, want %+v", tt.name, *u, wantUser)
		}
	}
}

// fakeTokens authenticates the tokens in users, rejects "rejected" with an
// error as an API server does, and fails every token while down is set.
type fakeTokens struct {
	users map[string]*userInfo
	down  error
	asked []string
}

func (f *fakeTokens) authenticateToken(_ context.Context, token string) (*userInfo, bool, error) {
	f.asked = append(f.asked, token)
	switch {
	case f.down != nil:
		return nil, false, f.down
	case token == "rejected":
		return nil, false, errors.New("token has been invalidated")
	}
	u, ok := f.users[token]
	return u, ok, nil
}

// TestAuthenticatorChain checks the delegating order: certificate, then
// tokens, the authenticated group, and anonymous only when nothing
// authenticated and nothing failed.
func TestAuthenticatorChain(t *testing.T) {
	ca, other := authtest.NewCA(t, "ca"), authtest.NewCA(t, "other")
	good, bad := ca.ClientCert(t, "cert-user", "g1"), other.ClientCert(t, "stranger")
	tokens := &fakeTokens{users: map[string]*userInfo{
		"alice-token":  {Name: "alice", Groups: []string{"devs"}},
		"system-token": {Name: "system:kube-controller-manager", Groups: []string{allAuthenticatedGroup}},
		"odd-token":    {Name: "odd", Groups: []string{allUnauthenticatedGroup}},
	}}
	withToken := func(r *http.Request, token string) *http.Request {
		r.Header.Set("Authorization", "Bearer "+token)
		return r
	}
	type want struct {
		user   string
		groups []string
		err    bool
	}
	for _, anonymous := range []bool{false, true} {
		authn := newRequestAuthenticator(loadCA(t, ca), tokens, anonymous)
		anon := want{}
		if anonymous {
			anon = want{user: anonymousUser, groups: []string{allUnauthenticatedGroup}}
		}
		for _, tt := range []struct {
			name string
			req  *http.Request
			want want
		}{
			{"nothing", withPeer(t, nil), anon},
			{"good certificate", withPeer(t, &good), want{user: "cert-user", groups: []string{"g1", allAuthenticatedGroup}}},
			{"good certificate and a token: the certificate wins", withToken(withPeer(t, &good), "alice-token"),
				want{user: "cert-user", groups: []string{"g1", allAuthenticatedGroup}}},
			{"foreign certificate", withPeer(t, &bad), want{err: true}},
			{"foreign certificate and a good token", withToken(withPeer(t, &bad), "alice-token"),
				want{user: "alice", groups: []string{"devs", allAuthenticatedGroup}}},
			{"token", withToken(withPeer(t, nil), "alice-token"), want{user: "alice", groups: []string{"devs", allAuthenticatedGroup}}},
			{"token already authenticated", withToken(withPeer(t, nil), "system-token"),
				want{user: "system:kube-controller-manager", groups: []string{allAuthenticatedGroup}}},
			{"token in the unauthenticated group", withToken(withPeer(t, nil), "odd-token"), want{user: "odd", groups: []string{allUnauthenticatedGroup}}},
			{"unknown token", withToken(withPeer(t, nil), "unknown"), want{err: true}},
			{"rejected token", withToken(withPeer(t, nil), "rejected"), want{err: true}},
			{"not a bearer token", func() *http.Request {
				r := withPeer(t, nil)
				r.Header.Set("Authorization", "Basic YWxpY2U6cHc=")
				return r
			}(), anon},
		} {
			u, ok, err := authn(tt.req)
			switch {
			case tt.want.err:
				if err == nil || ok {
					t.Errorf("anonymous %v, %s: ok %v, error %v, want an error (401, never anonymous)", anonymous, tt.name, ok, err)
				}
			case err != nil:
				t.Errorf("anonymous %v, %s: %v", anonymous, tt.name, err)
			case tt.want.user == "":
				if ok {
					t.Errorf("anonymous %v, %s: authenticated as %+v, want nobody", anonymous, tt.name, u)
				}
			case !ok || u.Name != tt.want.user || !reflect.DeepEqual(u.Groups, tt.want.groups):
				t.Errorf("anonymous %v, %s: %+v (ok %v), want %s in %v", anonymous, tt.name, u, ok, tt.want.user, tt.want.groups)
			}
		}
	}
	// The cached user is shared: adding the group must not change it.
	if got := tokens.users["alice-token"].Groups; !reflect.DeepEqual(got, []string{"devs"}) {
		t.Errorf("the token authenticator's user was changed: groups %v", got)
	}

	tokens.down = errors.New("connection refused")
	if u, ok, err := newRequestAuthenticator(nil, tokens, true)(withToken(withPeer(t, nil), "alice-token")); err == nil || ok {
		t.Errorf("TokenReview webhook down: %+v, ok %v, error %v, want an error (401), not anonymous", u, ok, err)
	}
}

func TestNewRequestAuthenticatorWithoutMethods(t *testing.T) {
	if authn := newRequestAuthenticator(nil, nil, false); authn != nil {
		t.Error("no method and no anonymous: want no authenticator (every request 401)")
	}
	u, ok, err := newRequestAuthenticator(nil, nil, true)(withPeer(t, nil))
	if err != nil || !ok || u.Name != anonymousUser || !reflect.DeepEqual(u.Groups, []string{allUnauthenticatedGroup}) {
		t.Errorf("anonymous only: %+v, %v, %v", u, ok, err)
	}
}

func TestBearerTokenAuthenticator(t *testing.T) {
	tokens := &fakeTokens{users: map[string]*userInfo{"tok": {Name: "alice"}}}
	authn := bearerTokenAuthenticator(tokens)
	for _, tt := range []struct {
		header   string
		wantUser bool
		wantErr  bool
		asked    string
	}{
		{"", false, false, ""},
		{"Bearer tok", true, false, "tok"},
		{"bearer tok", true, false, "tok"},
		{"  BEARER tok  ", true, false, "tok"},
		{"Bearer tok trailing", true, false, "tok"},
		{"Bearer", false, false, ""},
		{"Bearer  tok", false, false, ""}, // a space before the token: ignored, as upstream
		{"Basic tok", false, false, ""},
		{"Bearer nope", false, true, "nope"},
	} {
		tokens.asked = nil
		r := httptest.NewRequest("GET", "/", nil)
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		_, ok, err := authn(r)
		if ok != tt.wantUser || (err != nil) != tt.wantErr {
			t.Errorf("%q: ok %v, error %v", tt.header, ok, err)
		}
		if asked := strings.Join(tokens.asked, ","); asked != tt.asked {
			t.Errorf("%q: asked about %q, want %q", tt.header, asked, tt.asked)
		}
		// An authenticated request loses its token before any handler; the
		// others keep their header.
		if got := r.Header.Get("Authorization"); (ok && got != "") || (!ok && got != tt.header) {
			t.Errorf("%q: Authorization header %q after authentication (ok %v)", tt.header, got, ok)
		}
	}
}

func TestWebSocketTokenAuthenticator(t *testing.T) {
	tokens := &fakeTokens{users: map[string]*userInfo{"tok": {Name: "alice"}}}
	authn := webSocketTokenAuthenticator(tokens)
	protocol := func(token string) string {
		return bearerProtocolPrefix + base64.RawURLEncoding.EncodeToString([]byte(token))
	}
	for _, tt := range []struct {
		name        string
		upgrade     bool
		protocols   []string
		wantOK      bool
		wantErr     string
		wantRemains string
	}{
		{"token and a protocol", true, []string{protocol("tok") + ", v4.channel.k8s.io"}, true, "", "v4.channel.k8s.io"},
		{"in two headers", true, []string{"v5.channel.k8s.io", protocol("tok")}, true, "", "v5.channel.k8s.io"},
		{"not an upgrade", false, []string{protocol("tok") + ", v4.channel.k8s.io"}, false, "", ""},
		{"no token", true, []string{"v4.channel.k8s.io"}, false, "", ""},
		{"token alone", true, []string{protocol("tok")}, false, "missing additional subprotocol", ""},
		{"two tokens", true, []string{protocol("tok") + "," + protocol("tok") + ",x"}, false, "multiple", ""},
		{"bad encoding", true, []string{bearerProtocolPrefix + "!!!,x"}, false, "encoding", ""},
		{"unknown token", true, []string{protocol("nope") + ",x"}, false, "invalid bearer token", ""},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if tt.upgrade {
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
		}
		for _, p := range tt.protocols {
			r.Header.Add("Sec-WebSocket-Protocol", p)
		}
		u, ok, err := authn(r)
		if ok != tt.wantOK || (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: %+v, ok %v, error %v; want ok %v, error %q", tt.name, u, ok, err, tt.wantOK, tt.wantErr)
		}
		if ok && r.Header.Get("Sec-WebSocket-Protocol") != tt.wantRemains {
			t.Errorf("%s: protocols left %q, want %q", tt.name, r.Header.Values("Sec-WebSocket-Protocol"), tt.wantRemains)
		}
	}
}

// TestRejectedCredentialsNeverFallBackToAnonymous runs the secure port
// with anonymous access allowed: a token the API server rejects, a token
// that cannot be checked and a certificate of another CA are each 401,
// while a request without credentials is served as system:anonymous.
func TestRejectedCredentialsNeverFallBackToAnonymous(t *testing.T) {
	ca := authtest.NewCA(t, "ca")
	api := authtest.NewAPIServer(t)
	api.SetToken("alice-token", authenticationv1.UserInfo{Username: "alice"})
	cfg := webhookAuthConfig(t, api)
	cfg.Anonymous = true
	cfg.ClientCAFile = writeCA(t, t.TempDir(), ca)
	ts := startSecurePort(t, cfg, TLSConfig{})

	if status, _ := ts.get(t, ts.client(nil), "GET", "/stats/summary"); status != http.StatusOK {
		t.Fatalf("no credentials, anonymous allowed: %d, want 200", status)
	}
	if reviews := api.TakeReviews(); len(reviews) != 1 || reviews[0].User != anonymousUser {
		t.Fatalf("reviews %+v, want one for %s", reviews, anonymousUser)
	}
	stranger := authtest.NewCA(t, "other").ClientCert(t, "alice")
	for name, send := range map[string]func() (int, string){
		"unknown token": func() (int, string) {
			return ts.get(t, ts.client(nil), "GET", "/stats/summary", "Authorization", "Bearer unknown")
		},
		"certificate of another CA": func() (int, string) { return ts.get(t, ts.client(&stranger), "GET", "/stats/summary") },
	} {
		if status, body := send(); status != http.StatusUnauthorized || body != "Unauthorized" {
			t.Errorf("%s: %d %q, want 401 Unauthorized", name, status, body)
		}
	}
	api.Down()
	if status, body := ts.get(t, ts.client(nil), "GET", "/stats/summary", "Authorization", "Bearer new-token"); status != http.StatusUnauthorized {
		t.Errorf("token while the API server is down: %d %q, want 401", status, body)
	}
	if reviews := api.TakeReviews(); len(reviews) != 0 {
		t.Errorf("rejected requests reached authorization: %+v", reviews)
	}
}
