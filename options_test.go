package sessions_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/starsessions/sessions"
)

// TestDurationsFollowOneRule checks that WithLifetime and WithIdleTimeout
// treat a bad duration alike: New panics on a negative one (and on a zero
// lifetime, while a zero idle timeout means none).
func TestDurationsFollowOneRule(t *testing.T) {
	for _, tt := range []struct {
		name  string
		opt   sessions.Option
		panic bool
	}{
		{"negative lifetime", sessions.WithLifetime(-time.Second), true},
		{"zero lifetime", sessions.WithLifetime(0), true},
		{"negative idle timeout", sessions.WithIdleTimeout(-time.Second), true},
		{"zero idle timeout", sessions.WithIdleTimeout(0), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if got := recover() != nil; got != tt.panic {
					t.Errorf("New panicked: %t, want %t", got, tt.panic)
				}
			}()
			sessions.New[profile](newCookieBackend(), tt.opt)
		})
	}
}

// TestAuditLogger sends the audit trail to its own logger: the entries go
// there and nowhere else.
func TestAuditLogger(t *testing.T) {
	var audit, app bytes.Buffer
	clock := newFakeClock()
	m := newManager[profile](clock, newFakeBackend(clock),
		sessions.WithLogger(newTextLogger(&app)), sessions.WithAuditLogger(newTextLogger(&audit)))
	br := &browser{t: t, h: routes(m, standardActs)}
	br.do("GET", "/visit")
	br.do("GET", "/logout")
	for _, event := range []string{"event=created", "event=destroyed"} {
		if !strings.Contains(audit.String(), event) {
			t.Errorf("audit log lacks %s:\n%s", event, audit.String())
		}
	}
	if strings.Contains(app.String(), "sessions: audit") {
		t.Errorf("the manager's logger got audit entries:\n%s", app.String())
	}
}

// TestDefaultCookieName checks the default name: "__Host-" where the
// cookie can carry the prefix, plain otherwise.
func TestDefaultCookieName(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []sessions.Option
		want string
	}{
		{"defaults", nil, sessions.DefaultHostCookieName},
		{"not Secure", []sessions.Option{sessions.WithCookieSecure(false)}, sessions.DefaultCookieName},
		{"a Domain", []sessions.Option{sessions.WithCookieDomain("example.com")}, sessions.DefaultCookieName},
		{"a Path", []sessions.Option{sessions.WithCookiePath("/app")}, sessions.DefaultCookieName},
		{"a name of one's own", []sessions.Option{sessions.WithCookieName("sid")}, "sid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := sessions.New[profile](newCookieBackend(), tt.opts...)
			br := &browser{t: t, h: routes(m, standardActs)}
			br.do("GET", "/visit")
			if br.cookie == nil || br.cookie.Name != tt.want {
				t.Errorf("cookie %v, want the name %q", br.cookie, tt.want)
			}
		})
	}
}

// TestSetOwnerRegenerates checks that a login through SetOwner alone does
// not keep a token from before it (session fixation), unless the app opted
// out, and that a login that regenerates itself is not regenerated twice.
func TestSetOwnerRegenerates(t *testing.T) {
	for _, tt := range []struct {
		name       string
		opts       []sessions.Option
		login      func(s *sessions.Session[profile])
		keepsToken bool
	}{
		{"SetOwner alone", nil, func(s *sessions.Session[profile]) { s.SetOwner("ann") }, false},
		{"Regenerate, then SetOwner", nil, func(s *sessions.Session[profile]) { s.Regenerate(); s.SetOwner("ann") }, false},
		{"SetOwner, then Regenerate", nil, func(s *sessions.Session[profile]) { s.SetOwner("ann"); s.Regenerate() }, false},
		{"opted out", []sessions.Option{sessions.WithoutRegenerateOnOwnerChange()}, func(s *sessions.Session[profile]) { s.SetOwner("ann") }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			fb := newFakeBackend(clock)
			m := newManager[profile](clock, fb, tt.opts...)
			acts := map[string]func(*sessions.Session[profile]){"/visit": visit, "/login": tt.login, "/read": read}
			br := &browser{t: t, h: routes(m, acts)}
			br.do("GET", "/visit")
			before := br.cookie.Value
			br.do("GET", "/login")
			if got := br.cookie.Value == before; got != tt.keepsToken {
				t.Errorf("the token from before the login kept: %t, want %t", got, tt.keepsToken)
			}
			if fb.len() != 1 {
				t.Errorf("%d records after the login, want 1: the retired one must go", fb.len())
			}
			br.cookie.Value = before
			got := body(br.do("GET", "/read"))
			if wantNew := !tt.keepsToken; strings.HasSuffix(got, "new=true") != wantNew {
				t.Errorf("the token from before the login: %q; want a new session: %t", got, wantNew)
			}
		})
	}
	// A session that moves to another owner is regenerated too.
	clock := newFakeClock()
	m := newManager[profile](clock, newFakeBackend(clock))
	br := &browser{t: t, h: routes(m, map[string]func(*sessions.Session[profile]){
		"/ann": func(s *sessions.Session[profile]) { s.SetOwner("ann") },
		"/bob": func(s *sessions.Session[profile]) { s.SetOwner("bob") },
		"/off": func(s *sessions.Session[profile]) { s.SetOwner("") },
	})}
	br.do("GET", "/ann")
	ann := br.cookie.Value
	br.do("GET", "/bob")
	bob := br.cookie.Value
	if bob == ann {
		t.Error("a change of owner kept the token")
	}
	br.do("GET", "/off")
	if br.cookie.Value != bob {
		t.Error("untying the owner changed the token; it need not")
	}
}
