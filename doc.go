// Package sessions provides typed, pluggable sessions for net/http.
//
// A session is a value of a type the application defines, kept between
// requests of one client. There is no map[string]any, no type assertion and
// no gob registration: the value is encoded by a [Codec] and stored by a
// [Backend], and handlers get it back as a *T.
//
//	type Visit struct {
//		UserID int64
//		Count  int
//	}
//
//	mgr := sessions.New[Visit](cookie.New(secret))
//	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
//		s, err := mgr.Get(r)
//		if err != nil {
//			http.Error(w, "session unavailable", http.StatusInternalServerError)
//			return
//		}
//		s.Data().Count++
//		fmt.Fprintf(w, "visit %d", s.Data().Count)
//	})
//	http.ListenAndServe(":8080", mgr.Middleware(mux))
//
// # Loading and saving
//
// Sessions load lazily: [Manager.Get] reads and decodes the session the
// first time a request asks for it, so requests that never ask cost nothing.
// [WithAutoload] loads every session in the middleware instead.
//
// The middleware saves the session just before the response header is
// written, at the first Write, WriteHeader, Flush or ReadFrom, or when the
// handler returns. It saves only what changed, so a request that only reads
// sends no Set-Cookie and writes nothing to the backend, unless it must keep
// an idle timeout going (at most once per hundredth of the timeout) or
// re-sign a cookie signed with a retired secret. To find out, it
// compares the value with a copy of its contents that [Session.Data] set
// aside when it first handed out the pointer; only when the two differ, or
// when T holds maps or interfaces (which get no such copy), does it encode
// the session and compare the encoding with what was loaded. A handler that
// reads through [Session.Value] rather than [Session.Data] spares even the
// copy. A new session still equal to T's zero value is never stored and gets
// no cookie, so anonymous visitors cannot fill the store. A save that fails
// never turns into a silent 200: the error handler answers instead (see
// [WithErrorHandler]), and so does a load that failed when the handler
// answers as if it had not.
//
// A Session's methods are safe for concurrent use by the goroutines of its
// request, and ordered with the save; the pointer Data returns is not
// synchronized. Changes made after the response header is written are not
// saved, and the middleware logs a warning about them (for types with maps
// or interfaces, only those made through the Session's methods or a Data
// call after the header; see [Session]).
//
// # Concurrent requests
//
// Two requests on one session (two tabs, a burst of XHRs, a slow request
// beside a logout) never lose an update silently on a backend that
// implements [VersionedBackend], such as memory, Redis and PostgreSQL: each
// record carries a version, and a save succeeds only over the version its
// request loaded. When it meets a newer one, the manager reloads the record
// and replays the changes the request made through [Session.Update]; changes
// made through [Session.Data] are merged field by field (top-level fields,
// with the JSON and msgpack codecs), and fail with [ErrConflict] (409 by
// default) only when another request changed the same field to another
// value, rather than overwrite it.
// A destroyed or regenerated session is never brought back by a request
// that was still running. Conflicts arise between the requests of one
// process as well as between processes: a lock per session orders the saves
// of one process, so that a save that must reload sees the saves before it,
// but two requests that loaded the same version still conflict.
// [WithLastWriteWins] turns all of this off; the cookie backend, which
// keeps no server state, and backends that do not implement
// VersionedBackend are last-write-wins.
//
// # Expiry and cookies
//
// Every stored record carries its creation and last-access times, inside the
// signed payload for cookie sessions, so the server refuses a session after
// its lifetime ([WithLifetime], 24 hours by default) or idle timeout
// ([WithIdleTimeout]) even if an old cookie is replayed. Backends expire
// records too. The times come from the server that saved the record, and
// app servers whose clocks differ share sessions safely: a clock behind
// the one that created a session never makes its record unreadable.
// [Session.Regenerate] starts a new lifetime, counted from the login. Whether the cookie outlives the browser is a separate choice:
// [WithPersistent] for the manager, [Session.SetPersistent] for one session.
//
// # Sessions per user
//
// [Session.SetOwner] ties a session to its user, usually at login beside
// Regenerate. On a backend that is an [OwnerIndex] (memory, Redis,
// PostgreSQL), [Manager.Sessions] then lists the user's sessions,
// [Manager.Revoke] signs one out and [Manager.RevokeAll] all of them but
// those kept, at a cost that grows with that user's sessions only, for
// every manager on the backend. [Session.Check] tells a connection that
// outlives its request, such as a WebSocket, whether its session still
// stands. Cookie
// sessions cannot be listed; [WithValidate] refuses them instead, when
// something the user's own record holds has changed. [WithAuditTrail] logs
// the life of every session.
//
// # Beyond the browser cookie
//
// [WithTokenHeader] moves the token from a cookie to a request and response
// header, for API and mobile clients. [Session.Save] saves before the
// middleware would, or after the response header, as streaming and
// WebSocket handlers need; [Manager.Open] gives a session outside any
// request. [Flashes] are one-time messages in the session struct, and
// [WithClearSiteData] clears the browser's storage on logout.
//
// # Codecs
//
// [JSON] is the default; [Msgpack] is smaller and faster. Any type that
// implements [Codec] works, but it must be deterministic: a codec that
// encodes equal values differently makes unchanged sessions look changed,
// which costs writes, causes needless conflicts, and stores new sessions
// that still hold T's zero value. Bytes from a backend that are not a
// session record at all are a fault, reported as [ErrCorrupt].
//
// # Changing T
//
// With JSON and Msgpack, a stored session's top-level fields that T does
// not know, written by a newer release, are kept by every save of this
// one, so that two releases can serve the same users during a rolling
// deploy. A field whose type changes migrates in the type's own decoding
// hook (json.Unmarshaler, msgpack.CustomDecoder). Data that no longer
// decodes gives the client a new, empty session and a warning, one per
// burst, never an error page; sessionstest.Freeze catches such changes in
// an application's own tests.
//
// # Backends
//
// Subpackages provide backends: cookie keeps the session in a signed cookie
// (nothing on the server), memory keeps it in the process. The modules
// github.com/starsessions/sessions/redis and
// github.com/starsessions/sessions/postgres keep it in Redis (single
// server, Sentinel or Cluster) or PostgreSQL, for applications that run on
// more than one machine; they are separate modules so that this one never
// depends on a database client. A backend stores bytes under tokens and is
// easy to write; see the example of a user-written backend, and run the
// conformance suite in package sessionstest against it. Server-side
// backends store records under [HashToken] of the token, check incoming
// tokens with [ValidID] before looking them up, and may offer optional
// capabilities, in any combination: [RecordReader], [VersionedBackend],
// [Toucher] and [NameBinder].
//
// # Security
//
// Cookies are HttpOnly always, SameSite=Lax, Path=/ and Secure by default,
// and named "__Host-session" by default ([DefaultHostCookieName]); names
// starting with "__Host-" or "__Secure-" have their rules enforced.
// Session IDs are 256 bits from crypto/rand. A token is bound to the cookie
// name it was issued under, so that two managers on one secret or store do
// not accept each other's sessions. Call [Session.Regenerate] when a user
// logs in or otherwise changes privileges, and [Session.Destroy] on logout;
// [Session.SetOwner] regenerates a stored session itself when its owner
// changes to a user, in case a login forgets to.
// [Session.Token] is a bearer secret and never appears in log output; log
// [Session.Handle] instead.
package sessions
