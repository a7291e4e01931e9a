package server

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
)

// The users, groups and extra key k8s.io/apiserver's authenticators assign
// (pkg/authentication/user).
const (
	anonymousUser           = "system:anonymous"
	allUnauthenticatedGroup = "system:unauthenticated"
	allAuthenticatedGroup   = "system:authenticated"
	credentialIDKey         = "authentication.kubernetes.io/credential-id"
)

// userInfo is who a request comes from (k8s.io/apiserver's user.Info).
type userInfo struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string][]string
}

// requestAuthenticator decides who sent a request: a user (ok), no opinion
// (not ok, no error: it found no credentials of its kind), or an error
// (credentials of its kind that it rejects, or could not check). It is
// k8s.io/apiserver's authenticator.Request.
type requestAuthenticator func(r *http.Request) (*userInfo, bool, error)

// newRequestAuthenticator is k8s.io/apiserver's
// DelegatingAuthenticatorConfig.New as the kubelet configures it: x509
// client certificates (clientCA not nil), then bearer tokens in the
// Authorization header and in a WebSocket subprotocol (tokens not nil), the
// first to say ok wins and every one of them is asked otherwise; an
// authenticated user gains system:authenticated; and when anonymous is on
// and nothing authenticated the request and nothing failed, it is
// system:anonymous. A rejected certificate or token is an error, never
// anonymous. nil when there is no method at all and anonymous is off.
func newRequestAuthenticator(clientCA *clientCAFile, tokens tokenAuthenticator, anonymous bool) requestAuthenticator {
	var chain []requestAuthenticator
	if clientCA != nil {
		chain = append(chain, x509Authenticator(clientCA))
	}
	if tokens != nil {
		chain = append(chain, bearerTokenAuthenticator(tokens), webSocketTokenAuthenticator(tokens))
	}
	switch {
	case len(chain) == 0 && anonymous:
		return anonymousAuthenticator
	case len(chain) == 0:
		return nil
	}
	authn := withAuthenticatedGroup(firstAuthenticated(chain))
	if anonymous {
		return unlessFailed(authn, anonymousAuthenticator)
	}
	return authn
}

// firstAuthenticated asks each authenticator in turn until one says ok; it
// fails with every error met when none does (union.New).
func firstAuthenticated(chain []requestAuthenticator) requestAuthenticator {
	return func(r *http.Request) (*userInfo, bool, error) {
		var errs []error
		for _, authn := range chain {
			u, ok, err := authn(r)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if ok {
				return u, true, nil
			}
		}
		return nil, false, utilerrors.NewAggregate(errs)
	}
}

// unlessFailed asks first, and next only when first has no opinion
// (union.NewFailOnError).
func unlessFailed(first, next requestAuthenticator) requestAuthenticator {
	return func(r *http.Request) (*userInfo, bool, error) {
		u, ok, err := first(r)
		if err != nil || ok {
			return u, ok, err
		}
		return next(r)
	}
}

// withAuthenticatedGroup adds system:authenticated to an authenticated user
// that is neither anonymous nor in system:authenticated or
// system:unauthenticated already (group.AuthenticatedGroupAdder).
func withAuthenticatedGroup(authn requestAuthenticator) requestAuthenticator {
	return func(r *http.Request) (*userInfo, bool, error) {
		u, ok, err := authn(r)
		if err != nil || !ok {
			return nil, ok, err
		}
		if u.Name == anonymousUser || slices.ContainsFunc(u.Groups, func(g string) bool {
			return g == allAuthenticatedGroup || g == allUnauthenticatedGroup
		}) {
			return u, true, nil
		}
		withGroup := *u
		withGroup.Groups = append(slices.Clip(u.Groups), allAuthenticatedGroup)
		return &withGroup, true, nil
	}
}

// anonymousAuthenticator authenticates every request as system:anonymous
// in system:unauthenticated.
func anonymousAuthenticator(*http.Request) (*userInfo, bool, error) {
	return &userInfo{Name: anonymousUser, Groups: []string{allUnauthenticatedGroup}}, true, nil
}

// x509Authenticator authenticates a request by the client certificate of
// its connection, verified against the client CA bundle read last with the
// intermediates the client sent: user = CN, groups = O
// (request/x509.NewDynamic with CommonNameUserConversion). A certificate
// that does not verify is an error.
func x509Authenticator(clientCA *clientCAFile) requestAuthenticator {
	return func(r *http.Request) (*userInfo, bool, error) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return nil, false, nil
		}
		peers := r.TLS.PeerCertificates
		opts := clientCA.verifyOptions()
		if len(peers) > 1 {
			opts.Intermediates = x509.NewCertPool()
			for _, intermediate := range peers[1:] {
				opts.Intermediates.AddCert(intermediate)
			}
		}
		chains, err := peers[0].Verify(opts)
		if err != nil {
			return nil, false, fmt.Errorf("verifying certificate %s failed: %w", certificateIdentifier(peers[0]), err)
		}
		var errs []error
		for _, chain := range chains {
			u, ok, err := commonNameUser(chain[0])
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if ok {
				return u, true, nil
			}
		}
		return nil, false, utilerrors.NewAggregate(errs)
	}
}

// commonNameUser is the user a verified leaf certificate names: none
// without a CN; the UID from the subject's UID attribute (the
// AllowParsingUserUIDFromCertAuth feature, on since 1.33); the
// certificate's fingerprint as credential ID.
func commonNameUser(leaf *x509.Certificate) (*userInfo, bool, error) {
	if leaf.Subject.CommonName == "" {
		return nil, false, nil
	}
	uid, err := certificateUID(leaf)
	if err != nil {
		return nil, false, err
	}
	fingerprint := sha256.Sum256(leaf.Raw)
	return &userInfo{
		Name:   leaf.Subject.CommonName,
		UID:    uid,
		Groups: leaf.Subject.Organization,
		Extra:  map[string][]string{credentialIDKey: {"X509SHA256=" + hex.EncodeToString(fingerprint[:])}},
	}, true, nil
}

// uidOID is the X.509 name attribute holding a Kubernetes user's UID
// (k8s.io/apimachinery/pkg/apis/asn1.X509UID).
func uidOID() asn1.ObjectIdentifier {
	return asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57683, 2}
}

// certificateUID is the single UID attribute of the subject, "" without one.
func certificateUID(cert *x509.Certificate) (string, error) {
	var uids []string
	oid := uidOID()
	for _, name := range cert.Subject.Names {
		if !name.Type.Equal(oid) {
			continue
		}
		uid, ok := name.Value.(string)
		if !ok {
			return "", fmt.Errorf("unable to parse UID into a string")
		}
		uids = append(uids, uid)
	}
	switch {
	case len(uids) == 0:
		return "", nil
	case len(uids) != 1:
		return "", fmt.Errorf("expected 1 UID, but found multiple: %v", uids)
	case uids[0] == "":
		return "", errors.New("UID cannot be an empty string")
	}
	return uids[0], nil
}

// certificateIdentifier names a certificate in errors as upstream does.
func certificateIdentifier(c *x509.Certificate) string {
	return fmt.Sprintf("SN=%d, SKID=%s, AKID=%s", c.SerialNumber, colonHex(c.SubjectKeyId), colonHex(c.AuthorityKeyId))
}

// colonHex is AB:CD:EF.
func colonHex(b []byte) string {
	h := strings.ToUpper(hex.EncodeToString(b))
	var sb strings.Builder
	for i, r := range h {
		sb.WriteRune(r)
		if i%2 == 1 && i != len(h)-1 {
			sb.WriteRune(':')
		}
	}
	return sb.String()
}

// errInvalidToken is the error for a token the token authenticator did not
// accept and said nothing about.
var errInvalidToken = errors.New("invalid bearer token")

// bearerTokenAuthenticator authenticates the token of an "Authorization:
// Bearer <token>" header (the scheme in any case), and removes the header
// of an authenticated request so that no handler sees the token
// (request/bearertoken).
func bearerTokenAuthenticator(tokens tokenAuthenticator) requestAuthenticator {
	return func(r *http.Request) (*userInfo, bool, error) {
		auth := strings.TrimSpace(r.Header.Get("Authorization"))
		if auth == "" {
			return nil, false, nil
		}
		parts := strings.SplitN(auth, " ", 3)
		if len(parts) < 2 || strings.ToLower(parts[0]) != "bearer" {
			return nil, false, nil
		}
		token := parts[1]
		if token == "" {
			return nil, false, nil
		}
		u, ok, err := tokens.authenticateToken(r.Context(), token)
		if ok {
			r.Header.Del("Authorization")
		}
		if !ok && err == nil {
			err = errInvalidToken
		}
		return u, ok, err
	}
}

// bearerProtocolPrefix marks the WebSocket subprotocol that carries a
// bearer token, base64url without padding.
const bearerProtocolPrefix = "base64url.bearer.authorization.k8s.io."

// webSocketTokenAuthenticator authenticates the bearer token a WebSocket
// upgrade request carries as a subprotocol, and removes that subprotocol
// from an authenticated request (request/websocket).
func webSocketTokenAuthenticator(tokens tokenAuthenticator) requestAuthenticator {
	return func(r *http.Request) (*userInfo, bool, error) {
		if !isWebSocketRequest(r) {
			return nil, false, nil
		}
		token, others, err := webSocketToken(r.Header.Values("Sec-WebSocket-Protocol"))
		if err != nil || token == "" {
			return nil, false, err
		}
		u, ok, err := tokens.authenticateToken(r.Context(), token)
		if ok {
			r.Header.Set("Sec-WebSocket-Protocol", strings.Join(others, ","))
		}
		if !ok && err == nil {
			err = errInvalidToken
		}
		return u, ok, err
	}
}

// webSocketToken finds the token among the subprotocols of headers, and
// the other subprotocols, at least one of which must be there to be echoed.
func webSocketToken(headers []string) (token string, others []string, err error) {
	sawToken := false
	for _, header := range headers {
		for _, protocol := range strings.Split(header, ",") {
			protocol = strings.TrimSpace(protocol)
			if !strings.HasPrefix(protocol, bearerProtocolPrefix) {
				others = append(others, protocol)
				continue
			}
			if sawToken {
				return "", nil, errors.New("multiple base64.bearer.authorization tokens specified")
			}
			sawToken = true
			decoded, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(protocol, bearerProtocolPrefix))
			if err != nil {
				return "", nil, errors.New("invalid base64.bearer.authorization token encoding")
			}
			if !utf8.Valid(decoded) {
				return "", nil, errors.New("invalid base64.bearer.authorization token")
			}
			token = string(decoded)
		}
	}
	if token != "" && len(others) == 0 {
		return "", nil, errors.New("missing additional subprotocol")
	}
	return token, others, nil
}

// isWebSocketRequest reports whether r asks to upgrade to a WebSocket.
func isWebSocketRequest(r *http.Request) bool {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		return false
	}
	for _, h := range r.Header.Values("Connection") {
		if strings.Contains(strings.ToLower(h), "upgrade") {
			return true
		}
	}
	return false
}
