package sessions

import (
	"context"
	"time"
)

// SetNow replaces the manager's clock, for tests outside the package.
func SetNow[T any](m *Manager[T], now func() time.Time) { m.now = now }

// SetSleep replaces the manager's pause between save attempts.
func SetSleep[T any](m *Manager[T], sleep func(ctx context.Context, d time.Duration) error) {
	m.sleep = sleep
}

// MaxSaveAttempts is the bound on save attempts, for tests.
const MaxSaveAttempts = maxSaveAttempts

// SaveLocksHeld is how many sessions' save locks are held or awaited.
func SaveLocksHeld[T any](m *Manager[T]) int { return m.saveLocks.len() }
