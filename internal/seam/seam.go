// Package seam lets the conformance suite in package sessionstest give a
// manager the clock of the backend under test, through a hook that package
// sessions sets: the manager's clock is no part of its public API.
package seam

import "time"

// SetNow replaces the clock of manager, a *sessions.Manager[T].
var SetNow func(manager any, now func() time.Time)
