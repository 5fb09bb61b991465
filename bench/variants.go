package bench

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"sync"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	gorilla "github.com/gorilla/sessions"
	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/cookie"
	"github.com/starsessions/sessions/memory"
	"github.com/vmihailenco/msgpack/v5"
)

// A Variant is one way of keeping sessions, measured in every scenario.
type Variant struct {
	Name string
	// New returns an instance: one store, and a handler per scenario over
	// it.
	New func() Instance
	// ReadOnly limits the variant to the read scenarios, where alone it
	// differs from another.
	ReadOnly bool
	// TokenHeader, when set, is the header the variant's tokens travel in
	// instead of the session cookie.
	TokenHeader string
}

// An Instance is a variant's handlers over one store.
type Instance struct {
	Handler func(Scenario) http.Handler
	Close   func()
}

var (
	secret   = bytes.Repeat([]byte("k"), 32)
	blockKey = bytes.Repeat([]byte("b"), 32)
)

// Variants lists everything the benchmarks compare.
var Variants = []Variant{
	{Name: "bare", New: bare},
	{Name: "floor-cookie", New: floorCookie},
	{Name: "floor-memory", New: floorMemory},
	{Name: "starsessions-cookie-msgpack", New: starCookie(sessions.Msgpack, viaValue)},
	{Name: "starsessions-cookie-msgpack-data", New: starCookie(sessions.Msgpack, viaData), ReadOnly: true},
	{Name: "starsessions-cookie-json", New: starCookie(sessions.JSON, viaValue)},
	{Name: "starsessions-memory-msgpack", New: starMemory(viaValue)},
	{Name: "starsessions-memory-msgpack-data", New: starMemory(viaData), ReadOnly: true},
	{Name: "starsessions-memory-msgpack-header", New: starMemory(viaValue, sessions.WithTokenHeader(tokenHeader)), TokenHeader: tokenHeader},
	{Name: "gorilla-cookie-hmac", New: gorillaCookie(false)},
	{Name: "gorilla-cookie-hmac-aes", New: gorillaCookie(true)},
	{Name: "scs-memstore", New: scsMemstore},
}

// tokenHeader is the header of the header-token variant.
const tokenHeader = "X-Session-Token"

// bare is the harness alone: the handler's work with no session at all.
func bare() Instance {
	return Instance{Handler: func(s Scenario) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v := Full()
			if s == Create {
				v.Name = ""
			}
			Work(s, &v)
			w.Write(Body(&v))
		})
	}, Close: func() {}}
}

// A reader is how a starsessions handler reads the session in the read
// scenario.
type reader bool

const (
	// viaValue reads through Session.Value, the read-only accessor, which
	// spares the encoding that detects changes.
	viaValue reader = false
	// viaData reads through Session.Data, as a handler that may change
	// the session does; the middleware then encodes the session to see
	// whether it changed.
	viaData reader = true
)

func starCookie(codec sessions.Codec, rd reader) func() Instance {
	return func() Instance {
		m := sessions.New[Session](cookie.New(secret), sessions.WithCodec(codec))
		return Instance{Handler: func(s Scenario) http.Handler { return starHandler(m, s, rd) }, Close: func() {}}
	}
}

func starMemory(rd reader, opts ...sessions.Option) func() Instance {
	return func() Instance {
		store := memory.New()
		m := sessions.New[Session](store, append([]sessions.Option{sessions.WithCodec(sessions.Msgpack)}, opts...)...)
		return Instance{Handler: func(s Scenario) http.Handler { return starHandler(m, s, rd) }, Close: func() { store.Close() }}
	}
}

func starHandler(m *sessions.Manager[Session], s Scenario, rd reader) http.Handler {
	return m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := m.Get(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if s == Read && rd == viaValue {
			v := sess.Value()
			w.Write(Body(&v))
			return
		}
		v := sess.Data()
		Work(s, v)
		w.Write(Body(v))
	}))
}

func gorillaCookie(encrypt bool) func() Instance {
	return func() Instance {
		keys := [][]byte{secret}
		if encrypt {
			keys = append(keys, blockKey)
		}
		store := gorilla.NewCookieStore(keys...)
		store.Options = &gorilla.Options{Path: "/", MaxAge: 86400, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode}
		return Instance{Handler: func(s Scenario) http.Handler { return gorillaHandler(store, s) }, Close: func() {}}
	}
}

func gorillaHandler(store *gorilla.CookieStore, s Scenario) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, _ := store.Get(r, "session") // a bad cookie gives a new session and an error
		v, _ := sess.Values["s"].(Session)
		Work(s, &v)
		if s != Read {
			sess.Values["s"] = v
			if err := sess.Save(r, w); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		w.Write(Body(&v))
	})
}

func scsMemstore() Instance {
	// No cleanup goroutine: memstore's StopCleanup races with the
	// goroutine's start, and the benchmarks never let sessions expire.
	store := memstore.NewWithCleanupInterval(0)
	sm := scs.New()
	sm.Store = store
	sm.Cookie.Name = "session"
	sm.Cookie.Secure = true
	return Instance{Handler: func(s Scenario) http.Handler { return scsHandler(sm, s) }, Close: func() {}}
}

func scsHandler(sm *scs.SessionManager, s Scenario) http.Handler {
	return sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, _ := sm.Get(r.Context(), "s").(Session)
		Work(s, &v)
		if s != Read {
			sm.Put(r.Context(), "s", v)
		}
		w.Write(Body(&v))
	}))
}

// floorCookie is the least a signed cookie session needs: msgpack, an
// HMAC-SHA256 and base64, written by hand.
func floorCookie() Instance {
	return Instance{Handler: floorCookieHandler, Close: func() {}}
}

func sign(payload []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write(payload)
	return mac.Sum(nil)
}

func floorCookieHandler(s Scenario) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v Session
		if c, err := r.Cookie("session"); err == nil {
			raw, err := base64.RawURLEncoding.DecodeString(c.Value)
			if err == nil && len(raw) > sha256.Size && hmac.Equal(raw[:sha256.Size], sign(raw[sha256.Size:])) {
				if msgpack.Unmarshal(raw[sha256.Size:], &v) != nil {
					v = Session{}
				}
			}
		}
		Work(s, &v)
		if s != Read {
			payload, err := msgpack.Marshal(&v)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			value := base64.RawURLEncoding.EncodeToString(append(sign(payload), payload...))
			http.SetCookie(w, &http.Cookie{Name: "session", Value: value, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
		}
		w.Write(Body(&v))
	})
}

// floorMemory is the least a server-side session needs: a sync.Map from
// random token to msgpack bytes, written by hand.
func floorMemory() Instance {
	var store sync.Map
	load := func(_ context.Context, token string) ([]byte, error) {
		if data, ok := store.Load(token); ok {
			return data.([]byte), nil
		}
		return nil, nil
	}
	save := func(_ context.Context, token string, payload []byte) error {
		store.Store(token, payload)
		return nil
	}
	return Instance{Handler: func(s Scenario) http.Handler { return floorServerSide(load, save, s) }, Close: func() {}}
}

// floorServerSide is the handler of every server-side floor: load the
// msgpack bytes under the cookie's token (nil when there are none), do the
// scenario's work, store the bytes back under a random token for a new
// session.
func floorServerSide(load func(ctx context.Context, token string) ([]byte, error), save func(ctx context.Context, token string, payload []byte) error, s Scenario) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v Session
		var token string
		if c, err := r.Cookie("session"); err == nil {
			data, err := load(r.Context(), c.Value)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if data != nil && msgpack.Unmarshal(data, &v) == nil {
				token = c.Value
			}
		}
		Work(s, &v)
		if s != Read {
			payload, err := msgpack.Marshal(&v)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if token == "" {
				var id [32]byte
				rand.Read(id[:])
				token = base64.RawURLEncoding.EncodeToString(id[:])
				http.SetCookie(w, &http.Cookie{Name: "session", Value: token, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
			}
			if err := save(r.Context(), token, payload); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		w.Write(Body(&v))
	})
}
