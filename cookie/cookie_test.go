package cookie

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/sessionstest"
)

// macName is the cookie name the tests' keys are bound to.
const macName = sessions.DefaultCookieName

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
			rec, found, err := tt.backend.ReadRecord(ctx, tt.token)
			if err != nil {
				t.Fatalf("ReadRecord: %v", err)
			}
			got := struct {
				Data          string
				Found, Rotate bool
			}{string(rec.Data), found, rec.Rotate}
			want := struct {
				Data          string
				Found, Rotate bool
			}{tt.wantData, tt.wantFound, tt.wantRotate}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ReadRecord (-want +got):\n%s", diff)
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
	if !errors.Is(err, sessions.ErrCookieTooLarge) {
		t.Errorf("Write of 4000 bytes: err = %v, want sessions.ErrCookieTooLarge", err)
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

// TestSecretsAreCopied wipes the secret buffers after New, as a careful
// application does: the keys BindName derives afterwards must still come
// from the secrets as they were, not from zeros anyone could sign with.
func TestSecretsAreCopied(t *testing.T) {
	s, old := bytes.Clone(secret), bytes.Clone(oldSecret)
	b := New(s, WithOldSecrets(old))
	clear(s)
	clear(old)
	bound := b.BindName("session").(*Backend)
	zeros := New(make([]byte, len(secret))).BindName("session").(*Backend)
	if _, found, _ := bound.Read(ctx, write(t, zeros, "forged")); found {
		t.Error("a cookie signed with an all-zero secret is accepted after the secret's buffer was wiped")
	}
	if data, found, _ := New(secret).BindName("session").(*Backend).Read(ctx, write(t, bound, "x")); !found || string(data) != "x" {
		t.Errorf("the bound backend does not sign with the secret it was given: %q, %t", data, found)
	}
	if rec, found, _ := bound.ReadRecord(ctx, write(t, New(oldSecret).BindName("session").(*Backend), "y")); !found || !rec.Rotate {
		t.Errorf("the wiped old secret was not kept: found %t, rotate %t", found, rec.Rotate)
	}
}

// TestBoundToName checks that a cookie is accepted under the name it was
// issued for only, also when one Backend value serves both names, and that
// the name is bound into the keys as well as into the signature.
func TestBoundToName(t *testing.T) {
	shared := New(secret, WithOldSecrets(oldSecret))
	for _, encrypt := range []bool{false, true} {
		var opts []Option
		if encrypt {
			opts = append(opts, WithEncryption())
		}
		b := New(secret, opts...)
		pending, signedIn := b.BindName("pending").(*Backend), b.BindName("signed-in").(*Backend)
		token := write(t, pending, "x")
		if _, found, _ := signedIn.Read(ctx, token); found {
			t.Errorf("encrypt=%t: a cookie issued under one name is accepted under another", encrypt)
		}
		if data, found, _ := pending.Read(ctx, token); !found || string(data) != "x" {
			t.Errorf("encrypt=%t: the cookie is not accepted under its own name: %q, %t", encrypt, data, found)
		}
		if _, found, _ := b.Read(ctx, token); found {
			t.Errorf("encrypt=%t: the unbound backend, named %q, accepts a cookie for %q", encrypt, macName, "pending")
		}
		// The keys differ too, not only the name in the MAC.
		ka, kb := keyFor(secret, "a", encrypt), keyFor(secret, "b", encrypt)
		if ka.sc == kb.sc || bytes.Equal(deriveKey(secret, "p", "a"), deriveKey(secret, "p", "b")) {
			t.Errorf("encrypt=%t: keys for two names are equal", encrypt)
		}
	}
	// Binding neither changes the receiver nor drops its old secrets.
	old := write(t, New(oldSecret).BindName("n").(*Backend), "y")
	if rec, found, _ := shared.BindName("n").(*Backend).ReadRecord(ctx, old); !found || !rec.Rotate {
		t.Errorf("a bound backend lost its old secrets: found %t, rotate %t", found, rec.Rotate)
	}
	if shared.name != macName {
		t.Errorf("BindName changed the receiver's name to %q", shared.name)
	}
}

// TestTooLargeCountsTheName checks the 4096-byte limit on name and value
// together, at the boundary, under the name the backend is bound to.
func TestTooLargeCountsTheName(t *testing.T) {
	for _, name := range []string{"s", strings.Repeat("n", 100)} {
		b := New(secret).BindName(name).(*Backend)
		// Find the largest payload whose cookie fits.
		fits := -1
		for n := 2000; n < 4000; n++ {
			token, err := b.Write(ctx, "", bytes.Repeat([]byte("x"), n), time.Hour)
			if err != nil {
				if !errors.Is(err, sessions.ErrCookieTooLarge) {
					t.Fatal(err)
				}
				break
			}
			if len(name)+1+len(token) > sessions.MaxCookieSize {
				t.Fatalf("name %d bytes: Write returned a %d-byte cookie", len(name), len(name)+1+len(token))
			}
			fits = n
		}
		if fits < 0 {
			t.Fatalf("name %d bytes: no payload fits", len(name))
		}
		token, _ := b.Write(ctx, "", bytes.Repeat([]byte("x"), fits), time.Hour)
		if _, found, _ := b.Read(ctx, token); !found {
			t.Errorf("name %d bytes: the largest cookie that fits is not read back", len(name))
		}
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

// FuzzOpenMatchesSecurecookie holds the fast opener to securecookie's
// Decode: for any cookie value, both accept or both refuse, and they agree
// on the data.
func FuzzOpenMatchesSecurecookie(f *testing.F) {
	keys := []*key{keyFor(secret, macName, false), keyFor(secret, macName, true)}
	for _, k := range keys {
		for _, data := range []string{"", "x", "session data | with pipes |", strings.Repeat("y", 300)} {
			token, err := k.seal(macName, []byte(data))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(token)
			f.Add(token[:len(token)-1])
			f.Add(token + "=")
		}
	}
	f.Add("MTIzfHx8")
	f.Add("fA==")
	f.Fuzz(func(t *testing.T, token string) {
		for i, k := range keys {
			got, ok := k.open(macName, token)
			var want []byte
			err := k.sc.Decode(macName, token, &want)
			if ok != (err == nil) {
				t.Fatalf("key %d: open accepts=%t, securecookie.Decode err=%v", i, ok, err)
			}
			if ok && string(got) != string(want) {
				t.Fatalf("key %d: open = %q, securecookie.Decode = %q", i, got, want)
			}
		}
	})
}

// FuzzSealMatchesSecurecookie holds the hand-written signer to
// securecookie's Encode: dated alike, the two write the same value for any
// data, and open reads the data back.
func FuzzSealMatchesSecurecookie(f *testing.F) {
	for _, data := range []string{"", "x", "ab", "abc", "session data | with pipes |", strings.Repeat("y", 3000)} {
		f.Add([]byte(data))
	}
	k := keyFor(secret, macName, false)
	f.Fuzz(func(t *testing.T, data []byte) {
		want, err := k.sc.Encode(macName, data)
		if err != nil {
			t.Fatal(err)
		}
		// securecookie dates its value with the clock; read the date back
		// and seal at the same second.
		raw, err := b64(want)
		if err != nil {
			t.Fatal(err)
		}
		date, err := strconv.ParseInt(string(raw[:bytes.IndexByte(raw, '|')]), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		got := k.sealAt(macName, data, date)
		if got != want {
			t.Fatalf("sealAt = %q, securecookie.Encode = %q", got, want)
		}
		opened, ok := k.open(macName, got)
		if !ok || !bytes.Equal(opened, data) {
			t.Fatalf("open(seal(%q)) = %q, %t", data, opened, ok)
		}
	})
}

// FuzzOpenSignedMatchesSecurecookie signs arbitrary "date|value" pairs
// with a valid MAC, so that the fuzzer explores what lies behind the
// signature check: dates that are not numbers, values that are not base64,
// pipes in odd places, ciphertexts too short to hold an IV.
func FuzzOpenSignedMatchesSecurecookie(f *testing.F) {
	keys := []*key{keyFor(secret, macName, false), keyFor(secret, macName, true)}
	hashKeys := [][]byte{
		deriveKey(secret, "starsessions cookie signing key v2", macName),
		deriveKey(secret, "starsessions cookie signing key v2, encrypted", macName),
	}
	f.Add([]byte("1700000000"), []byte("c2Vzc2lvbg=="))
	f.Add([]byte("-1"), []byte("|"))
	f.Add([]byte("+12"), []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
	f.Add([]byte("9999999999999999999999"), []byte(""))
	f.Fuzz(func(t *testing.T, date, value []byte) {
		for i, k := range keys {
			signed := append(append(append([]byte{}, date...), '|'), value...)
			mac := hmac.New(sha256.New, hashKeys[i])
			mac.Write([]byte(macName + "|"))
			mac.Write(signed)
			token := base64.URLEncoding.EncodeToString(append(append(signed, '|'), mac.Sum(nil)...))
			got, ok := k.open(macName, token)
			var want []byte
			err := k.sc.Decode(macName, token, &want)
			if ok != (err == nil) {
				t.Fatalf("key %d, date %q value %q: open accepts=%t, securecookie.Decode err=%v", i, date, value, ok, err)
			}
			if ok && string(got) != string(want) {
				t.Fatalf("key %d: open = %q, securecookie.Decode = %q", i, got, want)
			}
		}
	})
}
