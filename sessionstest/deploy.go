package sessionstest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/starsessions/sessions"
	"github.com/vmihailenco/msgpack/v5"
)

// release1 is the session type of an application's first release.
type release1 struct {
	User   string
	Visits int
	Plan   int // a numeric plan code: 0 free, 1 pro, 2 team
}

// release2 is the next release's: it adds Theme, and makes Plan a named
// tier. A rolling deploy runs both at once, so Plan migrates in the type
// itself: it reads either form, and writes release 1's form until no
// instance of release 1 is left.
type release2 struct {
	User   string
	Visits int
	Plan   tier
	Theme  string
}

// tier is a plan by name.
type tier string

var tierCodes = []tier{"free", "pro", "team"}

func (t tier) code() int {
	for i, n := range tierCodes {
		if n == t {
			return i
		}
	}
	return 0
}

func tierOf(v any) (tier, error) {
	switch v := v.(type) {
	case string:
		return tier(v), nil
	case float64:
		return tierCodes[int(v)%len(tierCodes)], nil
	case int8, int16, int32, int64, uint8, uint16, uint32, uint64:
		n, _ := strconv.Atoi(fmt.Sprint(v))
		return tierCodes[n%len(tierCodes)], nil
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("a plan of type %T", v)
}

func (t tier) MarshalJSON() ([]byte, error) { return json.Marshal(t.code()) }

func (t *tier) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	var err error
	*t, err = tierOf(v)
	return err
}

func (t tier) EncodeMsgpack(enc *msgpack.Encoder) error { return enc.EncodeInt(int64(t.code())) }

func (t *tier) DecodeMsgpack(dec *msgpack.Decoder) error {
	v, err := dec.DecodeInterface()
	if err != nil {
		return err
	}
	*t, err = tierOf(v)
	return err
}

// testManagerRollingDeploy runs a rolling deploy: two managers, release 1
// and release 2 of one application, share the backend, and one client's
// requests alternate between them, each changing the session. A release
// must keep the fields it does not know, and migrate the ones whose type
// changed: at the end every field holds the last value either release
// wrote, and the client was never signed out.
func testManagerRollingDeploy(t *testing.T, s env) {
	for name, codec := range map[string]sessions.Codec{"json": sessions.JSON, "msgpack": sessions.Msgpack} {
		t.Run(name, func(t *testing.T) {
			m1 := s.newManager1(codec)
			m2 := s.newManager2(codec)
			h1 := m1.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sess, err := m1.Get(r)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				i, _ := strconv.Atoi(r.URL.Query().Get("i"))
				sess.Update(func(v *release1) { v.User = "ann"; v.Visits++; v.Plan = i % 3 })
				fmt.Fprint(w, sess.Value().Visits)
			}))
			h2 := m2.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sess, err := m2.Get(r)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				i, _ := strconv.Atoi(r.URL.Query().Get("i"))
				sess.Update(func(v *release2) {
					v.User = "ann"
					v.Visits++
					v.Plan = tierCodes[i%3]
					v.Theme = "theme " + strconv.Itoa(i)
				})
				fmt.Fprint(w, sess.Value().Visits)
			}))
			var cookie *http.Cookie
			lastTheme := ""
			// Release 2 takes the even requests, release 1 the odd ones,
			// the last among them: release 2's Theme must survive release
			// 1's saves.
			for i := range 100 {
				h := h1
				if i%2 == 0 {
					h, lastTheme = h2, "theme "+strconv.Itoa(i)
				}
				rec, c := send(h, "/?i="+strconv.Itoa(i), cookie)
				cookie = c
				if got := rec.Body.String(); got != strconv.Itoa(i+1) {
					t.Fatalf("request %d, to release %d: %d visits %q; the client was signed out, or a visit lost", i, 2-i%2, rec.Code, got)
				}
			}
			final := func(path string) *http.Request {
				req, _ := http.NewRequest(http.MethodGet, "https://example.com"+path, nil)
				req.AddCookie(cookie)
				return req
			}
			var v2 release2
			read2 := m2.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sess, err := m2.Get(r)
				if err == nil {
					v2 = sess.Value()
				}
			}))
			read2.ServeHTTP(discard{}, final("/"))
			want := release2{User: "ann", Visits: 100, Plan: tierCodes[99%3], Theme: lastTheme}
			if v2 != want {
				t.Errorf("release 2 reads %+v, want %+v", v2, want)
			}
			var v1 release1
			read1 := m1.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sess, err := m1.Get(r)
				if err == nil {
					v1 = sess.Value()
				}
			}))
			read1.ServeHTTP(discard{}, final("/"))
			if want := (release1{User: "ann", Visits: 100, Plan: 99 % 3}); v1 != want {
				t.Errorf("release 1 reads %+v, want %+v", v1, want)
			}
		})
	}
}

func (s env) newManager1(codec sessions.Codec) *sessions.Manager[release1] {
	return withSubjectClock(s, sessions.New[release1](s.Backend, sessions.WithCodec(codec)))
}

func (s env) newManager2(codec sessions.Codec) *sessions.Manager[release2] {
	return withSubjectClock(s, sessions.New[release2](s.Backend, sessions.WithCodec(codec)))
}

// discard is a ResponseWriter that keeps nothing.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
