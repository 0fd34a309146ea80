// Package client is the Go SDK of the Internet of People: connections to
// profile servers (Conn), queries that anyone can make (profiles, search,
// statistics), and the user agent (Agent) that keeps an identity hosted,
// checked in and its profile published.
//
// Every record a server returns is verified before it is handed to the
// caller: profiles must carry their owner's signature and images must match
// the hashes their profile commits to. A server that fails verification
// yields ErrBadServer. Server refusals are *StatusError values; test them
// with errors.Is(err, client.Status(wirepb.Status_NOT_FOUND)) and friends.
package client
