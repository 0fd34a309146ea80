package client_test

import (
	"context"
	"log"

	"github.com/iop-go/iop/client"
	"github.com/iop-go/iop/identity"
)

// One app, two personas: each identity has its own agent (its own
// hosting, check-in, services and private graph), all sharing one libp2p
// host and one local API, as `iop agent --all` runs them. Commands and
// other processes choose an identity with LocalClient.As.
func Example_severalIdentities() {
	ctx := context.Background()
	server, err := client.ParseAddr("/ip4/127.0.0.1/tcp/16980/p2p/12D3KooW...") // a node's address
	if err != nil {
		log.Fatal(err)
	}
	h, err := client.NewHost()
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	var agents []*client.Agent
	for range 2 {
		key, _ := identity.GenerateKey(nil)
		a, err := client.NewAgent(client.AgentConfig{Home: "/home/ada/.iop", Key: key, Server: server, Type: "person", Host: h})
		if err != nil {
			log.Fatal(err)
		}
		agents = append(agents, a)
		go a.Run(ctx)
		go a.ServeRelations(ctx) // answers private-graph requests for this identity
	}
	go client.ServeLocal(ctx, "/home/ada/.iop", agents...)
	work := client.NewLocalClient("/home/ada/.iop").As(agents[0].ID())
	if _, err := work.Status(ctx); err != nil {
		log.Fatal(err)
	}
}
