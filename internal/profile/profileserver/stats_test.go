package profileserver_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/iop-go/iop/internal/profile/profileserver/profileservertest"
)

// TestStats checks the per-type counts: hosted identities, uninitialized
// ones included and cancelled ones excluded.
func TestStats(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	h := profileservertest.ClientHost(t)
	observer := srv.DialFrom(t, h)
	ctx := testCtx(t)
	stats, err := observer.Stats(ctx)
	wantOK(t, err)
	if len(stats) != 0 {
		t.Errorf("Stats of an empty server = %v, want none", stats)
	}

	for i := range 3 {
		key := newKey(t)
		c := customerFrom(t, srv, h, key, "person")
		if i > 0 { // the first stays uninitialized
			publish(t, c, key, profileOf("person", "P", 1), nil, nil)
		}
	}
	customerFrom(t, srv, h, newKey(t), "Person") // types are case-sensitive
	customerFrom(t, srv, h, newKey(t), "bot")
	for range 2 {
		wantOK(t, customerFrom(t, srv, h, newKey(t), "org").CancelHosting(ctx, nil))
	}
	c := customerFrom(t, srv, h, newKey(t), "bot")
	wantOK(t, c.CancelHosting(ctx, nil))

	stats, err = observer.Stats(ctx)
	wantOK(t, err)
	want := map[string]int{"person": 3, "Person": 1, "bot": 1}
	if diff := cmp.Diff(want, stats); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
	// Stats need no conversation, and are the same for every client.
	if stats2, err := srv.DialFrom(t, h).Stats(ctx); err != nil || !cmp.Equal(stats, stats2) {
		t.Errorf("Stats on another stream = %v, %v; want %v", stats2, err, stats)
	}
}
