package webauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// sealer signs small values into cookie-safe strings: base64url(JSON) "."
// base64url(HMAC-SHA256). They are signed, not encrypted: a session holds
// only who logged in and until when, which its holder already knows.
type sealer struct{ key []byte }

// purpose separates the cookies signed with one key, so a login cookie can
// never be presented as a session.
func (s sealer) seal(purpose string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("seal %s: %w", purpose, err)
	}
	body := base64.RawURLEncoding.EncodeToString(b)
	return body + "." + base64.RawURLEncoding.EncodeToString(s.mac(purpose, body)), nil
}

func (s sealer) open(purpose, sealed string, v any) error {
	body, sig, ok := bytes.Cut([]byte(sealed), []byte("."))
	if !ok {
		return errors.New("malformed cookie")
	}
	got, err := base64.RawURLEncoding.DecodeString(string(sig))
	if err != nil || !hmac.Equal(got, s.mac(purpose, string(body))) {
		return errors.New("cookie signature does not match")
	}
	b, err := base64.RawURLEncoding.DecodeString(string(body))
	if err != nil {
		return errors.New("malformed cookie")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("malformed cookie: %w", err)
	}
	return nil
}

func (s sealer) mac(purpose, body string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(purpose + "\n" + body))
	return m.Sum(nil)
}

// session is the signed login cookie's content.
type session struct {
	User    User  `json:"u"`
	Expires int64 `json:"exp"`
}

func (s session) valid(now time.Time) bool { return now.Before(time.Unix(s.Expires, 0)) }
