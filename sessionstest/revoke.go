package sessionstest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/starsessions/sessions"
)

// opened returns a stored session of m, made through Open, with owner.
func opened(t *testing.T, m *sessions.Manager[suiteSession], owner string) *sessions.Session[suiteSession] {
	t.Helper()
	ctx := context.Background()
	s, err := m.Open(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	s.Update(func(v *suiteSession) { v.User = owner })
	if owner != "" {
		s.SetOwner(owner)
	}
	if err := s.Save(ctx); err != nil {
		t.Fatalf("saving a new session: %v", err)
	}
	return s
}

// testManagerCheck checks Session.Check, which an open socket asks on an
// interval: nil while the record stands, ErrRevoked once it was revoked,
// destroyed or expired.
func testManagerCheck(t *testing.T, s env) {
	ctx := context.Background()
	m := s.newManager(s.Backend, sessions.WithLifetime(2*time.Second))
	standing := opened(t, m, "ann")
	if err := standing.Check(ctx); err != nil {
		t.Fatalf("Check of a stored session: %v, want nil", err)
	}

	// Destroyed by another request.
	other, err := m.Open(ctx, standing.Token())
	if err != nil {
		t.Fatal(err)
	}
	other.Destroy()
	if err := other.Save(ctx); err != nil {
		t.Fatal(err)
	}
	if err := standing.Check(ctx); !errors.Is(err, sessions.ErrRevoked) {
		t.Errorf("Check after another request destroyed the session: %v, want ErrRevoked", err)
	}
	if err := other.Check(ctx); !errors.Is(err, sessions.ErrRevoked) {
		t.Errorf("Check of the session that destroyed itself: %v, want ErrRevoked", err)
	}

	// Revoked.
	if _, ok := s.Backend.(sessions.OwnerIndex); ok {
		revoked := opened(t, m, "bob")
		if _, err := m.RevokeAll(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		if err := revoked.Check(ctx); !errors.Is(err, sessions.ErrRevoked) {
			t.Errorf("Check after RevokeAll: %v, want ErrRevoked", err)
		}
	}

	// Expired: the lifetime is two seconds.
	expiring := opened(t, m, "cy")
	s.advance(2500 * time.Millisecond)
	if err := expiring.Check(ctx); !errors.Is(err, sessions.ErrRevoked) {
		t.Errorf("Check after the lifetime: %v, want ErrRevoked", err)
	}
}

// testManagerRevokeAllAcrossManagers signs a user out of every manager on
// the backend at once: a cookie manager for browsers and a header-token
// manager for an API, whose records carry different name tags.
func testManagerRevokeAllAcrossManagers(t *testing.T, s env) {
	ownerIndex(t, s.Backend)
	ctx := context.Background()
	browsers := s.newManager(s.Backend)
	api := s.newManager(s.Backend, sessions.WithTokenHeader("X-Session-Token"))
	sessionsOf := []*sessions.Session[suiteSession]{opened(t, browsers, "ann"), opened(t, api, "ann"), opened(t, api, "ann")}
	bystander := opened(t, api, "bob")

	n, err := browsers.RevokeAll(ctx, "ann")
	if err != nil || n != len(sessionsOf) {
		t.Fatalf("RevokeAll from the cookie manager = %d, %v; want %d, nil", n, err, len(sessionsOf))
	}
	for i, sess := range sessionsOf {
		if err := sess.Check(ctx); !errors.Is(err, sessions.ErrRevoked) {
			t.Errorf("session %d after RevokeAll: Check = %v, want ErrRevoked", i, err)
		}
	}
	if err := bystander.Check(ctx); err != nil {
		t.Errorf("another owner's session after RevokeAll: Check = %v, want nil", err)
	}
	// A listing stays typed to its manager.
	if infos, err := api.Sessions(ctx, "bob"); err != nil || len(infos) != 1 {
		t.Errorf("api.Sessions(bob) = %d sessions, %v; want 1", len(infos), err)
	}
	if infos, err := browsers.Sessions(ctx, "bob"); err != nil || len(infos) != 0 {
		t.Errorf("browsers.Sessions(bob) = %d sessions, %v; want 0: the cookie manager lists its own", len(infos), err)
	}
}
