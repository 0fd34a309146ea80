package turnserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/iop-go/iop/identity"
)

// Credentials are short-lived TURN credentials of one identity, to be used as
// the username and password of a standard TURN client (for example an
// ICE server entry of WebRTC).
type Credentials struct {
	Username string
	Password string
	// Expires is when the server stops accepting the credentials, to the
	// second.
	Expires time.Time
}

// Errors of [ParseUsername].
var (
	ErrMalformedUsername = errors.New("malformed turn username")
	ErrExpired           = errors.New("turn credentials expired")
)

// Grant returns credentials for id that expire CredentialTTL after now. The
// caller must have verified that the request comes from id.
func (s *Server) Grant(id identity.ID, now time.Time) Credentials {
	exp := now.Add(s.cfg.CredentialTTL).Unix()
	user := strconv.FormatInt(exp, 10) + ":" + id.String()
	return Credentials{
		Username: user,
		Password: password(s.cfg.Secret, user),
		Expires:  time.Unix(exp, 0),
	}
}

// password is base64(HMAC-SHA256(secret, username)).
func password(secret []byte, username string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// ParseUsername splits a username made by [Server.Grant] into its identity
// and expiry. It reports ErrExpired when the expiry is before now.
func ParseUsername(username string, now time.Time) (identity.ID, time.Time, error) {
	expStr, idStr, ok := strings.Cut(username, ":")
	if !ok {
		return identity.ID{}, time.Time{}, fmt.Errorf("%w %q: no colon", ErrMalformedUsername, username)
	}
	exp, err := strconv.ParseInt(expStr, 10, 64)
	if err != nil || exp <= 0 || expStr[0] == '+' {
		return identity.ID{}, time.Time{}, fmt.Errorf("%w %q: bad expiry", ErrMalformedUsername, username)
	}
	id, err := identity.ParseID(idStr)
	if err != nil {
		return identity.ID{}, time.Time{}, fmt.Errorf("%w %q: %w", ErrMalformedUsername, username, err)
	}
	expires := time.Unix(exp, 0)
	if now.After(expires) {
		return id, expires, fmt.Errorf("%w: %q expired at %s", ErrExpired, username, expires.UTC().Format(time.RFC3339))
	}
	return id, expires, nil
}
