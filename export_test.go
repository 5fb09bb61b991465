package sessions

import "time"

// SetNow replaces the manager's clock, for tests outside the package.
func SetNow[T any](m *Manager[T], now func() time.Time) { m.now = now }
