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
