package sessions

import "time"

// expiry is a manager's rules for when a session ends: its absolute
// lifetime, and its idle timeout with the slack that spares a session in
// use one extension per request. Every time it deals in is in Unix
// seconds, and every rule holds whatever the clock of the server that
// created the session said: a record created by a server ahead of this
// one, or last saved by one behind it, is neither refused early nor kept
// past its lifetime by more than the skew.
type expiry struct {
	lifetime time.Duration
	idle     time.Duration // 0: no idle timeout
}

// slack is how far a record's expiry may fall behind the idle timeout
// before a request that only reads the session extends it, and how much
// longer than the idle timeout each extension lasts: a hundredth of the
// timeout, at least a second. A session in use is so extended at most once
// per slack, and one no longer used ends between the idle timeout and the
// idle timeout plus the slack after its last use.
func (e expiry) slack() int64 { return int64(max(e.idle/100, time.Second) / time.Second) }

// extension is how long an extension of the idle timeout lasts: the idle
// timeout plus its slack.
func (e expiry) extension() int64 { return int64(e.idle/time.Second) + e.slack() }

// deadline returns the end of the lifetime of a session with header h.
func (e expiry) deadline(h recordHeader) int64 { return h.created + int64(e.lifetime/time.Second) }

// expiresAt returns when the server will refuse a session with header h
// that was last extended at extended.
func (e expiry) expiresAt(h recordHeader, extended int64) int64 {
	end := e.deadline(h)
	if e.idle > 0 {
		end = min(end, extended+e.extension())
	}
	return end
}

// expired returns why a record with header h is no longer valid at now,
// or "". storeIdles says that the store expires the record by the idle
// timeout itself (a Toucher that reports its expiries): a touch moves that
// expiry on without rewriting the record, whose access time then lags.
func (e expiry) expired(h recordHeader, now int64, storeIdles bool) string {
	if now >= e.deadline(h) {
		return "session lifetime ended"
	}
	if e.idle > 0 && !storeIdles && now >= h.accessed+e.extension() {
		return "session idle timeout passed"
	}
	return ""
}

// ttl returns how long the backend should keep a record with header h
// written or touched at now: the rest of its lifetime, or one extension of
// the idle timeout when that is shorter; never less than a second, and
// never more than the lifetime, which a creation time from a clock ahead of
// this one would otherwise stretch.
func (e expiry) ttl(h recordHeader, now int64) time.Duration {
	ttl := e.remaining(h, now)
	if e.idle > 0 {
		ttl = min(ttl, time.Duration(e.extension())*time.Second)
	}
	return max(ttl, time.Second)
}

// remaining returns the rest of the lifetime of a session with header h
// at now, between a second and the whole lifetime: a persistent cookie's
// Max-Age.
func (e expiry) remaining(h recordHeader, now int64) time.Duration {
	r := e.lifetime - time.Duration(now-h.created)*time.Second
	return min(max(r, time.Second), e.lifetime)
}

// touchDue reports whether a record with header h that the backend keeps
// until expires leaves less than the idle timeout from now, or less than
// the session's lifetime, whichever is shorter. Both times are whole
// seconds, rounded down: now+1 is the latest the request can have come.
func (e expiry) touchDue(h recordHeader, expires, now int64) bool {
	want := min(now+1+int64(e.idle/time.Second), e.deadline(h))
	return expires < want
}

// extendDue reports whether a request at now on a stored session with
// header h must extend its expiry for the idle timeout. touchable says the
// backend touches records and reported this one's expiry, expires: then
// the expiry decides, and otherwise the access time in the header does,
// once it is a slack old. A request on a server whose clock is behind the
// one that last saved the session finds the access time in its future,
// and extends nothing.
func (e expiry) extendDue(h recordHeader, touchable bool, expires, now int64) bool {
	if e.idle <= 0 {
		return false
	}
	if touchable {
		return expires == 0 || e.touchDue(h, expires, now)
	}
	return now-h.accessed >= e.slack()
}

// extended returns when the idle timeout of a session with header h was
// last extended, as a request at now leaves it: now, unless the request
// leaves its expiry be (see extendDue).
func (e expiry) extended(h recordHeader, stored, touchable bool, expires, now int64) int64 {
	if e.idle <= 0 || !stored || e.extendDue(h, touchable, expires, now) {
		return now
	}
	if touchable {
		return expires - e.extension()
	}
	return h.accessed
}
