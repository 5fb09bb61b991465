package sessions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/starsessions/sessions"
	"github.com/starsessions/sessions/cookie"
	"github.com/starsessions/sessions/memory"
)

// Cart is an application's session type: a plain struct.
type Cart struct {
	UserID int64
	Items  []string
}

// get sends a GET with the cookie, if any, and returns the response.
func get(h http.Handler, path string, c *http.Cookie) *http.Response {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if c != nil {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func Example() {
	secret := []byte("an example secret of 32 bytes or more")
	mgr := sessions.New[Cart](cookie.New(secret))

	mux := http.NewServeMux()
	mux.HandleFunc("/add", func(w http.ResponseWriter, r *http.Request) {
		s, err := mgr.Get(r)
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		cart := s.Data() // a *Cart: no type assertions
		cart.Items = append(cart.Items, r.URL.Query().Get("item"))
		fmt.Fprintf(w, "%d items", len(cart.Items))
	})
	h := mgr.Middleware(mux)

	res := get(h, "/add?item=tea", nil)
	cookie := res.Cookies()[0]
	fmt.Println(body(res), cookie.Name, cookie.HttpOnly, cookie.Secure)
	res = get(h, "/add?item=milk", cookie)
	fmt.Println(body(res))
	// Output:
	// 1 items __Host-session true true
	// 2 items
}

func ExampleManager_Get() {
	store := memory.New()
	defer store.Close()
	mgr := sessions.New[Cart](store, sessions.WithCodec(sessions.Msgpack))
	h := mgr.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := mgr.Get(r)
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "new=%t items=%v", s.IsNew(), s.Data().Items)
	}))
	res := get(h, "/", nil)
	// The session was only read and is still empty, so nothing was stored
	// and no cookie was set.
	fmt.Println(body(res), len(res.Cookies()))
	// Output: new=true items=[] 0
}

func ExampleSession_Regenerate() {
	store := memory.New()
	defer store.Close()
	mgr := sessions.New[Cart](store)
	h := mgr.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := mgr.Get(r)
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		if r.URL.Path == "/login" {
			s.Regenerate() // a new ID on every change of privilege
			s.Data().UserID = 42
		}
		fmt.Fprintf(w, "user %d", s.Data().UserID)
	}))

	login := get(h, "/login", nil).Cookies()[0]
	fmt.Println(body(get(h, "/", login)))
	// Output: user 42
}

func ExampleSession_Destroy() {
	store := memory.New()
	defer store.Close()
	mgr := sessions.New[Cart](store)
	h := mgr.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := mgr.Get(r)
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		switch r.URL.Path {
		case "/login":
			s.Data().UserID = 42
		case "/logout":
			s.Destroy()
		}
		fmt.Fprintf(w, "user %d", s.Data().UserID)
	}))

	c := get(h, "/login", nil).Cookies()[0]
	res := get(h, "/logout", c)
	fmt.Println(body(res), "cookie deleted:", res.Cookies()[0].MaxAge < 0)
	// The old cookie no longer names a session.
	fmt.Println(body(get(h, "/", c)))
	// Output:
	// user 0 cookie deleted: true
	// user 0
}

// mapBackend is a complete user-written backend: a map with expiry,
// keyed by the token's hash.
type mapBackend struct {
	mu      sync.Mutex
	records map[[32]byte]mapRecord
}

type mapRecord struct {
	data    []byte
	expires time.Time
}

func (b *mapBackend) Read(_ context.Context, token string) ([]byte, bool, error) {
	if !sessions.ValidID(token) { // a token this library never issued
		return nil, false, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	rec, ok := b.records[sessions.HashToken(token)]
	if !ok || time.Now().After(rec.expires) {
		return nil, false, nil
	}
	return rec.data, true, nil
}

func (b *mapBackend) Write(_ context.Context, id string, data []byte, ttl time.Duration) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.records[sessions.HashToken(id)] = mapRecord{append([]byte(nil), data...), time.Now().Add(ttl)}
	return id, nil
}

func (b *mapBackend) Remove(_ context.Context, token string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.records, sessions.HashToken(token))
	return nil
}

func Example_customBackend() {
	mgr := sessions.New[Cart](&mapBackend{records: map[[32]byte]mapRecord{}})
	h := mgr.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := mgr.Get(r)
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		s.Data().Items = append(s.Data().Items, "x")
		fmt.Fprint(w, len(s.Data().Items))
	}))
	c := get(h, "/", nil).Cookies()[0]
	fmt.Println(body(get(h, "/", c)))
	// Output: 2
}

func ExampleSession_Update() {
	store := memory.New()
	defer store.Close()
	mgr := sessions.New[Cart](store)
	loaded := make(chan struct{})
	proceed := make(chan struct{})
	h := mgr.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := mgr.Get(r)
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		item := r.URL.Query().Get("item")
		if item == "slow" {
			loaded <- struct{}{} // another tab saves while this request works
			<-proceed
		}
		if item != "" {
			// A read-modify-write change, replayed if another request
			// saved the session since this one loaded it.
			s.Update(func(c *Cart) { c.Items = append(c.Items, item) })
		}
		fmt.Fprint(w, s.Value().Items)
	}))
	c := get(h, "/?item=first", nil).Cookies()[0]

	slow := make(chan *http.Response)
	go func() { slow <- get(h, "/?item=slow", c) }()
	<-loaded
	fmt.Println("fast tab:", body(get(h, "/?item=fast", c)))
	close(proceed)
	fmt.Println("slow tab:", (<-slow).StatusCode)
	fmt.Println("stored:", body(get(h, "/", c)))
	// Output:
	// fast tab: [first fast]
	// slow tab: 200
	// stored: [first fast slow]
}

func ExampleWithErrorHandler() {
	secret := []byte("an example secret of 32 bytes or more")
	mgr := sessions.New[Cart](cookie.New(secret),
		sessions.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			// Runs instead of the handler's response, before any of it is
			// written, when the session cannot be loaded or saved.
			switch {
			case errors.Is(err, sessions.ErrCookieTooLarge):
				http.Error(w, "your cart is too large", http.StatusRequestEntityTooLarge)
			case errors.Is(err, sessions.ErrConflict):
				http.Error(w, "changed in another tab; please retry", http.StatusConflict)
			default:
				http.Error(w, "session unavailable", http.StatusInternalServerError)
			}
		}))
	h := mgr.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := mgr.Get(r)
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		for range 500 {
			s.Data().Items = append(s.Data().Items, "a long item name")
		}
		fmt.Fprint(w, "added") // the save fails here, before the header
	}))
	res := get(h, "/", nil)
	fmt.Println(res.StatusCode, body(res))
	// Output: 413 your cart is too large
}

func ExampleSession_SetPersistent() {
	mgr := sessions.New[Cart](cookie.New([]byte("an example secret of 32 bytes or more")),
		sessions.WithLifetime(30*24*time.Hour))
	h := mgr.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := mgr.Get(r)
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		s.Data().UserID = 42
		// The user left "remember me" unticked: the cookie dies with the
		// browser, though the server would keep the session for 30 days.
		s.SetPersistent(r.FormValue("remember") == "on")
	}))
	fmt.Println("remembered:", get(h, "/?remember=on", nil).Cookies()[0].MaxAge)
	fmt.Println("not remembered:", get(h, "/", nil).Cookies()[0].MaxAge)
	// Output:
	// remembered: 2592000
	// not remembered: 0
}

// Tier is a plan by name. It replaced a numeric plan code, and migrates
// sessions stored with the old form as they are read: a field whose type
// changes migrates in the type's own decoding hook (json.Unmarshaler here;
// msgpack.CustomDecoder for the Msgpack codec).
type Tier string

var tierNames = []Tier{"free", "pro", "team"}

func (t *Tier) UnmarshalJSON(b []byte) error {
	var code int
	if err := json.Unmarshal(b, &code); err == nil { // the old form
		if code < 0 || code >= len(tierNames) {
			return fmt.Errorf("unknown plan code %d", code)
		}
		*t = tierNames[code]
		return nil
	}
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return err
	}
	*t = Tier(name)
	return nil
}

// Account is the session type after the change.
type Account struct {
	User string
	Plan Tier // was Plan int
}

func Example_migration() {
	store := memory.New()
	defer store.Close()
	// Release 1 stored its sessions with a numeric plan.
	type accountV1 struct {
		User string
		Plan int
	}
	v1 := sessions.New[accountV1](store)
	res := get(v1.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := v1.Get(r)
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		s.Update(func(a *accountV1) { a.User, a.Plan = "ann", 1 })
	})), "/", nil)

	// Release 2 reads them through Tier's migration: nobody is signed out.
	v2 := sessions.New[Account](store)
	h := v2.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := v2.Get(r)
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s %s new=%t", s.Value().User, s.Value().Plan, s.IsNew())
	}))
	fmt.Println(body(get(h, "/", res.Cookies()[0])))
	// Output: ann pro new=false
}
