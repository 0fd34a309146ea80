// Package turnserver is the STUN and TURN server every IoP node runs.
//
// It is a standard RFC 8489 (STUN) / RFC 8656 (TURN) server over UDP, built
// on pion turn/v5, so any ICE or WebRTC client can use IoP infrastructure:
// binding requests are answered for anyone, and allocations need long-term
// credentials.
//
// # Credentials
//
// Credentials are short-lived and follow the "TURN REST API" scheme
// (draft-uberti-behave-turn-rest): the node grants them to signed requests of
// IoP identities with [Server.Grant], and the TURN server checks them without
// keeping any state:
//
//	username = "<expiry, unix seconds>:<identity ID, 64 hex digits>"
//	password = base64(HMAC-SHA256(secret, username))
//
// The secret is the node's own HMAC key ([Config.Secret]); it never leaves
// the node. The caller of Grant (the profile server) verifies the identity's
// signature first; this package trusts its caller. On every authenticated
// request (Allocate, Refresh, CreatePermission, ChannelBind) the server
// parses the username, refuses it once expired, recomputes the password and
// derives the long-term key MD5(username ":" realm ":" password) from it, so a
// wrong password, a forged username for another identity, or an expired one
// fails MESSAGE-INTEGRITY with 401 (Unauthorized). As with other TURN REST
// servers, an allocation whose credentials have expired cannot be refreshed:
// it lives until its current lifetime runs out, and the client asks for new
// credentials.
//
// # Quotas
//
// Allocations are counted per identity, not per username, so fresh
// credentials do not buy more: an Allocate beyond
// [Config.MaxAllocationsPerIdentity] live allocations gets 486 (Allocation
// Quota Reached). [Config.MaxBytesPerAllocation], when set, caps the relayed
// bytes of one allocation (both directions); datagrams beyond it are dropped,
// as UDP may drop them.
//
// # Limits
//
// Only UDP relaying over a UDP listener is offered: TCP allocations (RFC 6062)
// are refused, and so is DONT-FRAGMENT (420, as pion does). The relay does not
// filter peer addresses; a node on a public address should add a peer filter
// before relaying to private ranges.
package turnserver
