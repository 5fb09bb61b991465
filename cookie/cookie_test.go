package cookie

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/sessionstest"
)

var (
	secret    = bytes.Repeat([]byte("k"), 32)
	oldSecret = bytes.Repeat([]byte("o"), 32)
	ctx       = context.Background()
)

func TestConformance(t *testing.T) {
	for name, opts := range map[string][]Option{"signed": nil, "encrypted": {WithEncryption()}} {
		t.Run(name, func(t *testing.T) {
			sessionstest.Run(t, sessionstest.Config{
				Stateless: true,
				New: func(t *testing.T) sessionstest.Subject {
					return sessionstest.Subject{Backend: New(secret, opts...)}
				},
			})
		})
	}
}

func write(t *testing.T, b *Backend, data string) string {
	t.Helper()
	token, err := b.Write(ctx, sessions.NewID(), []byte(data), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func TestRead(t *testing.T) {
	current := New(secret)
	token := write(t, current, "payload")
	encrypted := write(t, New(secret, WithEncryption()), "payload")
	tests := []struct {
		name       string
		backend    *Backend
		token      string
		wantData   string
		wantFound  bool
		wantRotate bool
	}{
		{"current secret", current, token, "payload", true, false},
		{"old secret still verifies", New(oldSecret, WithOldSecrets(secret)), token, "payload", true, true},
		{"another app's secret", New(oldSecret), token, "", false, false},
		{"tampered", current, token[:10] + flip(token[10]) + token[11:], "", false, false},
		{"truncated", current, token[:len(token)-4], "", false, false},
		{"empty", current, "", "", false, false},
		{"garbage", current, "not a cookie at all", "", false, false},
		{"oversized", current, strings.Repeat("A", 5000), "", false, false},
		{"encrypted, read by an encrypting backend", New(secret, WithEncryption()), encrypted, "payload", true, false},
		{"encrypted, read without the cipher", current, encrypted, "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, found, rotate, err := tt.backend.ReadRotate(ctx, tt.token)
			if err != nil {
				t.Fatalf("ReadRotate: %v", err)
			}
			got := struct {
				Data          string
				Found, Rotate bool
			}{string(data), found, rotate}
			want := struct {
				Data          string
				Found, Rotate bool
			}{tt.wantData, tt.wantFound, tt.wantRotate}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ReadRotate (-want +got):\n%s", diff)
			}
		})
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func TestEncryptionHidesData(t *testing.T) {
	token := write(t, New(secret, WithEncryption()), "secret-plaintext")
	for _, s := range []string{token, decodeLayers(token)} {
		if strings.Contains(s, "secret-plaintext") {
			t.Errorf("the encrypted cookie shows its data")
		}
	}
	if !strings.Contains(decodeLayers(write(t, New(secret), "visible-plaintext")), "visible") {
		t.Errorf("control: the signed cookie's data not found in its decoding; the check above proves nothing")
	}
}

// decodeLayers undoes securecookie's two layers of base64, as anyone
// holding the cookie can.
func decodeLayers(token string) string {
	outer, err := b64(token)
	if err != nil {
		return ""
	}
	parts := strings.SplitN(string(outer), "|", 3)
	if len(parts) < 2 {
		return ""
	}
	inner, _ := b64(parts[1])
	return string(inner)
}

func TestWriteTooLarge(t *testing.T) {
	_, err := New(secret).Write(ctx, sessions.NewID(), bytes.Repeat([]byte("x"), 4000), time.Hour)
	if !errors.Is(err, ErrTooLarge) || !errors.Is(err, sessions.ErrCookieTooLarge) {
		t.Errorf("Write of 4000 bytes: err = %v, want ErrTooLarge", err)
	}
}

func TestShortSecretPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"secret":     func() { New([]byte("too short")) },
		"old secret": func() { New(secret, WithOldSecrets([]byte("short"))) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				msg, _ := recover().(string)
				if !strings.Contains(msg, "at least 32") {
					t.Errorf("panic = %q, want a message about the secret's length", msg)
				}
			}()
			f()
		})
	}
}

func TestKeysDependOnSecret(t *testing.T) {
	a, b := New(secret), New(append([]byte{'x'}, secret[1:]...))
	if _, found, _ := b.Read(ctx, write(t, a, "x")); found {
		t.Errorf("secrets differing in one byte accept each other's cookies")
	}
}

// FuzzRead feeds arbitrary cookie values to the decode path: it must never
// panic, never error, and accept only what the backend signed.
func FuzzRead(f *testing.F) {
	b := New(secret)
	valid, _ := b.Write(ctx, "", []byte("seed"), time.Hour)
	for _, s := range []string{valid, "", "|", "MTIzfA==", valid[:len(valid)/2], strings.Repeat("=", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		data, found, err := b.Read(ctx, token)
		if err != nil {
			t.Fatalf("Read returned an error: %v", err)
		}
		if found && token != valid {
			t.Fatalf("Read accepted a token it did not sign: %q -> %q", token, data)
		}
	})
}
