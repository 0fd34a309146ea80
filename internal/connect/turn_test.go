package connect_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/iop-go/iop/internal/connect"
	"github.com/iop-go/iop/internal/connect/connecttest"
	"github.com/iop-go/iop/internal/turnserver"
	"github.com/iop-go/iop/internal/turnserver/turnservertest"
)

func TestMigrateTURN(t *testing.T) {
	srv := turnservertest.Start(t, turnserver.Config{})
	p := mustOpenPair(t, connecttest.Options{Delay: time.Millisecond}, func(_ bool, cfg *connect.Config) {
		cred := srv.Grant(cfg.Key.ID(), time.Now())
		cfg.ICEServers = []connect.ICEServer{{
			URLs:       []string{fmt.Sprintf("turn:%s?transport=udp", srv.Addr())},
			Username:   cred.Username,
			Credential: cred.Password,
		}}
		cfg.RelayOnly = true
	})
	migrateAndStream(t, p, connect.PathTURN)
	if n := srv.Allocations(p.a.LocalAddr().(connect.Addr).ID) + srv.Allocations(p.b.LocalAddr().(connect.Addr).ID); n == 0 {
		t.Errorf("no TURN allocations on the server, want the path to use them")
	}
}
