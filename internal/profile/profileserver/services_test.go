package profileserver_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/internal/profile/profileserver"
	"github.com/iop-go/iop/internal/profile/profileserver/profileservertest"
	"github.com/iop-go/iop/internal/wire/wirepb"
)

func TestApplicationServices(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	key := newKey(t)
	c := srv.Customer(t, key, "person")
	publish(t, c, key, profileOf("person", "Sam", 1), nil, nil)
	observer := srv.Dial(t)
	ctx := testCtx(t)
	services := func() []string {
		t.Helper()
		info, err := observer.GetProfile(ctx, key.ID(), client.GetOptions{Services: true})
		wantOK(t, err)
		return info.Services
	}
	want := func(step string, names ...string) {
		t.Helper()
		if diff := cmp.Diff(names, services(), cmpopts.EquateEmpty(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("%s: services (-want +got):\n%s", step, diff)
		}
	}

	want("none yet")
	wantOK(t, c.AddServices(ctx, "chat", "call"))
	want("added", "chat", "call")
	info, err := observer.GetProfile(ctx, key.ID(), client.GetOptions{})
	wantOK(t, err)
	if len(info.Services) != 0 {
		t.Errorf("GetProfile without Services = %v, want none", info.Services)
	}

	wantOK(t, c.AddServices(ctx, "chat", "files", "files"))
	want("duplicates added", "chat", "call", "files")

	wantOK(t, c.RemoveService(ctx, "call"))
	want("removed", "chat", "files")
	wantStatus(t, c.RemoveService(ctx, "call"), wirepb.Status_NOT_FOUND, "")
	wantStatus(t, c.RemoveService(ctx, "never"), wirepb.Status_NOT_FOUND, "")
	want("refused removals", "chat", "files")

	// The services belong to the checked-in stream: a new check-in starts
	// without any, and they go when the stream does.
	c2 := srv.Dial(t)
	wantOK(t, c2.StartConversation(ctx, key))
	wantOK(t, c2.CheckIn(ctx))
	waitDone(t, c, "older check-in")
	want("after a new check-in")
	wantOK(t, c2.AddServices(ctx, "chat"))
	want("added on the new stream", "chat")
	c2.Close()
	waitUntil(t, callTimeout, "identity offline", func() bool {
		info, err := observer.GetProfile(ctx, key.ID(), client.GetOptions{Services: true})
		wantOK(t, err)
		return !info.Online
	})
	want("offline")
}

func TestApplicationServicesQuota(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	key := newKey(t)
	c := srv.Customer(t, key, "person")
	publish(t, c, key, profileOf("person", "Sam", 1), nil, nil)
	ctx := testCtx(t)
	var names []string
	for i := range profileserver.MaxServices - 1 {
		names = append(names, fmt.Sprintf("service-%02d", i))
	}
	wantOK(t, c.AddServices(ctx, names...))
	// A batch that would overflow is refused whole.
	wantStatus(t, c.AddServices(ctx, "one", "two"), wirepb.Status_QUOTA_EXCEEDED, "")
	wantOK(t, c.AddServices(ctx, "fiftieth", names[0])) // a duplicate does not count
	wantStatus(t, c.AddServices(ctx, "fifty-first"), wirepb.Status_QUOTA_EXCEEDED, "")

	info, err := srv.Dial(t).GetProfile(ctx, key.ID(), client.GetOptions{Services: true})
	wantOK(t, err)
	if len(info.Services) != profileserver.MaxServices {
		t.Errorf("services after the quota = %d, want %d", len(info.Services), profileserver.MaxServices)
	}
	wantOK(t, c.RemoveService(ctx, "fiftieth"))
	wantOK(t, c.AddServices(ctx, "fifty-first"))
}

func TestApplicationServicesInvalid(t *testing.T) {
	t.Parallel()
	srv := profileservertest.Start(t)
	key := newKey(t)
	c := srv.Customer(t, key, "person")
	publish(t, c, key, profileOf("person", "Sam", 1), nil, nil)
	ctx := testCtx(t)
	tests := []struct {
		names   []string
		details string
	}{
		{nil, "serviceNames"},
		{[]string{""}, "serviceNames[0]"},
		{[]string{"chat", ""}, "serviceNames[1]"},
		{[]string{strings.Repeat("s", profileserver.MaxServiceNameLen+1)}, "serviceNames[0]"},
		{[]string{"a", "b", strings.Repeat("é", 17)}, "serviceNames[2]"},
	}
	for _, tt := range tests {
		wantStatus(t, c.AddServices(ctx, tt.names...), wirepb.Status_INVALID_VALUE, tt.details)
	}
	long := strings.Repeat("s", profileserver.MaxServiceNameLen)
	wantOK(t, c.AddServices(ctx, long))
	wantStatus(t, c.RemoveService(ctx, ""), wirepb.Status_INVALID_VALUE, "serviceName")
	wantStatus(t, c.RemoveService(ctx, long+"s"), wirepb.Status_INVALID_VALUE, "serviceName")

	info, err := srv.Dial(t).GetProfile(ctx, key.ID(), client.GetOptions{Services: true})
	wantOK(t, err)
	if diff := cmp.Diff([]string{long}, info.Services); diff != "" {
		t.Errorf("services after refused changes (-want +got):\n%s", diff)
	}
}
