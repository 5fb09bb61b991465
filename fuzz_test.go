package sessions

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// FuzzCookieValue feeds arbitrary Cookie headers to the middleware's
// cookie parser and the token-shape check: no panic, and a value that
// passes the check is a plain run of cookie-octets.
func FuzzCookieValue(f *testing.F) {
	for _, s := range []string{
		"session=abc", "a=1; session=x; b=2", `session="quoted"`, "session=", "session",
		"sessionx=1", "session=a\r\nSet-Cookie: x=y", "session=caf\xc3\xa9", ";;;", " session = v ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		v, ok := cookieValue(http.Header{"Cookie": {header}}, "session")
		if !ok {
			if v != "" {
				t.Fatalf("not found, but value %q", v)
			}
			return
		}
		if !strings.Contains(header, "session=") {
			t.Fatalf("found %q in a header without session=", v)
		}
		if validToken(v) && strings.ContainsAny(v, "; \t\r\n\",\\") {
			t.Fatalf("validToken accepted %q", v)
		}
	})
}

// FuzzParseRecord feeds arbitrary bytes to the record envelope's parser:
// no panic, and whatever parses re-encodes to a record that parses the same.
func FuzzParseRecord(f *testing.F) {
	f.Add(appendRecordHeader(nil, recordHeader{created: 1_700_000_000, accessed: 1_700_000_100, persist: persistOn}))
	f.Add([]byte{recordFormat << 4, 0, 0})
	f.Add([]byte{legacyFormat<<4 | 1, 0, 0, '{', '}'})
	f.Add([]byte{recordFormat<<4 | 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, payload, err := parseRecord(b)
		if err != nil {
			return
		}
		if h.accessed < h.created || h.created < 0 {
			t.Fatalf("parsed impossible times %+v", h)
		}
		// A legacy record re-encodes in the current format.
		want := h
		want.legacy = false
		again := append(appendRecordHeader(nil, h), payload...)
		h2, payload2, err := parseRecord(again)
		if err != nil || h2 != want || string(payload2) != string(payload) {
			t.Fatalf("re-encoded record parses as %+v %q %v, want %+v %q", h2, payload2, err, want, payload)
		}
	})
}

// fuzzProfile is a session type with the shapes codecs find hard.
type fuzzProfile struct {
	ID    int64
	Name  string
	Roles []string
	Prefs map[string]int
	Next  *fuzzProfile
}

// FuzzCodecs feeds arbitrary bytes to each codec's decoder into a typed
// struct: no panic, and what decodes re-encodes.
func FuzzCodecs(f *testing.F) {
	seed := fuzzProfile{ID: 7, Name: "ann", Roles: []string{"a"}, Prefs: map[string]int{"x": 1}, Next: &fuzzProfile{}}
	for _, c := range []Codec{JSON, Msgpack} {
		b, _ := c.Marshal(&seed)
		f.Add(b)
	}
	f.Add([]byte("null"))
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})                                      // msgpack map claiming 4 billion entries
	f.Add([]byte{0x81, 0xa5, 'R', 'o', 'l', 'e', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}) // 4 billion roles claimed
	f.Fuzz(func(t *testing.T, b []byte) {
		// The bounds check may refuse only what msgpack itself cannot
		// read, never what it can.
		if checkMsgpack(b) == nil {
			if err := msgpack.NewDecoder(bytes.NewReader(b)).Skip(); err != nil {
				t.Fatalf("checkMsgpack accepted %x, which msgpack cannot skip: %v", b, err)
			}
		}
		for _, c := range []Codec{JSON, Msgpack} {
			var v fuzzProfile
			if c.Unmarshal(b, &v) != nil {
				continue
			}
			out, err := c.Marshal(&v)
			if err != nil {
				t.Fatalf("%T: decoded %+v but cannot encode it: %v", c, v, err)
			}
			if c == Msgpack {
				if err := checkMsgpack(out); err != nil {
					t.Fatalf("checkMsgpack refused the encoder's own output %x: %v", out, err)
				}
			}
		}
	})
}

// FuzzValidID checks the hand-written shape check against the standard
// library's strict decoder, which also skips CR and LF; ValidID refuses
// them.
func FuzzValidID(f *testing.F) {
	f.Add(NewID())
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	f.Add("0000000000000000000000000\n000000000000000000")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := base64.RawURLEncoding.Strict().DecodeString(s)
		want := err == nil && len(b) == idBytes && !strings.ContainsAny(s, "\r\n")
		if got := ValidID(s); got != want {
			t.Fatalf("ValidID(%q) = %t, want %t", s, got, want)
		}
	})
}

// FuzzProxyHeaders feeds the Host, X-Forwarded-Proto and Forwarded
// headers that decide the plain-HTTP warning, all of them the client's to
// choose: no input may panic, and neither may claim HTTPS or loopback
// without saying so.
func FuzzProxyHeaders(f *testing.F) {
	for _, seed := range [][2]string{
		{"localhost:8080", "for=192.0.2.60;proto=https;by=203.0.113.43"},
		{"[::1]:443", `proto="https", for=x`},
		{"app.example", "proto=http"},
		{"127.0.0.1", ";;,,=="},
		{"sub.localhost.", "PROTO=HTTPS"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, host, forwarded string) {
		h := http.Header{"Forwarded": {forwarded}, "X-Forwarded-Proto": {forwarded}}
		if forwardedHTTPS(h) && !strings.Contains(strings.ToLower(forwarded), "https") {
			t.Fatalf("forwardedHTTPS(%q) without https in it", forwarded)
		}
		if loopbackHost(host) && !strings.Contains(strings.ToLower(host), "localhost") && !strings.ContainsAny(host, ":.") {
			t.Fatalf("loopbackHost(%q): neither a name under localhost nor an address", host)
		}
	})
}
