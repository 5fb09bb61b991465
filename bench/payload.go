// Package bench compares starsessions with the session libraries Go
// applications use today, gorilla/sessions and alexedwards/scs, and with
// hand-written floors that do the least work a session needs. It lives in
// its own module so that the core module never depends on those libraries.
//
// Run it with run.sh, which writes results.md and results.svg.
package bench

import (
	"encoding/gob"
	"time"
)

// Session is the payload every variant stores: a realistic session with a
// user id, a 12-character name, two roles, three cart lines, a 32-character
// CSRF token and a timestamp.
type Session struct {
	UserID int64
	Name   string
	Roles  []string
	Cart   []Line
	CSRF   string
	Seen   time.Time
	Count  int
}

// Line is one line of the cart.
type Line struct {
	SKU string
	Qty int
}

// Full returns the payload a new session is given.
func Full() Session {
	return Session{
		UserID: 1234567,
		Name:   "Ada Lovelace",
		Roles:  []string{"user", "editor"},
		Cart:   []Line{{"SKU-0001", 1}, {"SKU-0002", 3}, {"SKU-0003", 2}},
		CSRF:   "0123456789abcdef0123456789abcdef",
		Seen:   time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC),
	}
}

// Scenario is what a request does to its session.
type Scenario int

const (
	// Read reads a valid session and changes nothing.
	Read Scenario = iota
	// Write changes one number and one timestamp.
	Write
	// Create stores the full payload in a new session.
	Create
)

func (s Scenario) String() string { return [...]string{"read", "write", "new"}[s] }

// Work is the handler work of scenario s on the session v.
func Work(s Scenario, v *Session) {
	switch s {
	case Write:
		v.Count++
		v.Seen = v.Seen.Add(time.Second)
	case Create:
		*v = Full()
	}
}

// Body is what every handler writes: the name and the counter, so that a
// check can see what the handler saw.
func Body(v *Session) []byte {
	b := make([]byte, 0, 24)
	b = append(b, v.Name...)
	b = append(b, ':')
	return appendInt(b, v.Count)
}

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

func init() {
	// gorilla/sessions and scs keep values in maps of interfaces, encoded
	// with gob, which must know the concrete type.
	gob.Register(Session{})
}
