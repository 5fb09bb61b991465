package sessions

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPlanSave checks the decisions of planSave, one case per row.
func TestPlanSave(t *testing.T) {
	// plan is savePlan in a form cmp can show.
	type plan struct {
		Write, RefreshOnly, Recheck, Touch, Remove, Expire, Send bool
		HeaderWritten                                            bool // err is ErrHeaderWritten
	}
	tests := []struct {
		name string
		in   saveInput
		want plan
	}{
		{"nothing changed", saveInput{stored: true, hadToken: true}, plan{}},
		{"a change", saveInput{dirty: true, stored: true, hadToken: true}, plan{Write: true}},
		{"idle timeout due, the backend touches", saveInput{stored: true, extendDue: true, touchable: true}, plan{Touch: true}},
		{"idle timeout due, no touch, no versions", saveInput{stored: true, extendDue: true}, plan{Write: true, RefreshOnly: true, Recheck: true}},
		{"idle timeout due, no touch, versions", saveInput{stored: true, extendDue: true, versioned: true}, plan{Write: true, RefreshOnly: true}},
		{"idle timeout due, a change", saveInput{dirty: true, stored: true, extendDue: true}, plan{Write: true}},
		{"a retired token led here", saveInput{stored: true, hadToken: true, stale: true, versioned: true}, plan{Send: true}},
		{"a retired token led here, idle touch due", saveInput{stored: true, hadToken: true, stale: true, extendDue: true, touchable: true}, plan{Touch: true, Send: true}},
		{"a retired token led here, a change", saveInput{dirty: true, stored: true, hadToken: true, stale: true}, plan{Write: true}},
		{"a retired token led here, logout", saveInput{stored: true, retiring: true, destroyed: true, hadToken: true, stale: true}, plan{Remove: true, Expire: true}},
		{"a retired token led here, after the header", saveInput{stored: true, hadToken: true, stale: true, tokenFixed: true}, plan{}},
		{"cookie: idle timeout due", saveInput{stored: true, extendDue: true, clientSide: true}, plan{Write: true, RefreshOnly: true}},
		{"idle timeout not due", saveInput{stored: true, touchable: true}, plan{}},
		{"logout", saveInput{stored: true, retiring: true, destroyed: true, hadToken: true}, plan{Remove: true, Expire: true}},
		{"logout of a session the client has no token for", saveInput{retiring: true, destroyed: true}, plan{Remove: true}},
		{"logout, then a new session", saveInput{dirty: true, retiring: true, destroyed: true, hadToken: true}, plan{Write: true}},
		{"regenerate", saveInput{dirty: true, retiring: true, hadToken: true}, plan{Write: true}},

		{"after the header: a change", saveInput{dirty: true, stored: true, tokenFixed: true}, plan{Write: true}},
		{"after the header: a new session", saveInput{dirty: true, tokenFixed: true}, plan{HeaderWritten: true}},
		{"after the header: regenerate", saveInput{dirty: true, retiring: true, tokenFixed: true}, plan{HeaderWritten: true}},
		{"after the header: logout", saveInput{stored: true, retiring: true, destroyed: true, hadToken: true, tokenFixed: true}, plan{Remove: true}},
		{"after the header: logout, then a new session", saveInput{dirty: true, retiring: true, destroyed: true, hadToken: true, tokenFixed: true}, plan{Remove: true, HeaderWritten: true}},
		{"after the header: a new kind of cookie", saveInput{dirty: true, stored: true, tokenFixed: true, persistChanged: true}, plan{HeaderWritten: true}},
		{"after the header: idle touch", saveInput{stored: true, extendDue: true, touchable: true, tokenFixed: true}, plan{Touch: true}},

		{"cookie: a change", saveInput{dirty: true, stored: true, clientSide: true}, plan{Write: true}},
		{"cookie: logout", saveInput{stored: true, retiring: true, destroyed: true, hadToken: true, clientSide: true}, plan{Remove: true, Expire: true}},
		{"cookie after the header: a change", saveInput{dirty: true, stored: true, tokenFixed: true, clientSide: true}, plan{HeaderWritten: true}},
		{"cookie after the header: regenerate", saveInput{dirty: true, retiring: true, tokenFixed: true, clientSide: true}, plan{HeaderWritten: true}},
		// The cookie stays valid: nothing may say the session ended.
		{"cookie after the header: logout", saveInput{stored: true, retiring: true, destroyed: true, hadToken: true, tokenFixed: true, clientSide: true}, plan{HeaderWritten: true}},
		{"cookie after the header: idle refresh", saveInput{stored: true, extendDue: true, tokenFixed: true, clientSide: true}, plan{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := planSave(tt.in)
			if p.err != nil && !errors.Is(p.err, ErrHeaderWritten) {
				t.Fatalf("err = %v, want nil or ErrHeaderWritten", p.err)
			}
			got := plan{p.write, p.refreshOnly, p.recheck, p.touch, p.remove, p.expire, p.send, p.err != nil}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("planSave(%+v) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}
