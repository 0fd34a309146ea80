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
// # DONT-FRAGMENT and reason phrases
//
// pion answers an Allocate carrying DONT-FRAGMENT with 420 (Unknown
// Attribute), which leaves clients that send it (turnutils_uclient -g, some
// SIP stacks) without a relay. The server wraps its listener socket and, for
// such an Allocate, checks MESSAGE-INTEGRITY itself with the long-term key it
// derives from the username; only if it verifies (and the username has not
// expired) is the attribute removed and the request signed again with the
// same key (and FINGERPRINT recomputed) before pion sees it. A request that
// would fail authentication reaches pion unchanged and fails the same way,
// so the rewrite reveals nothing to a client without credentials. The relayed
// sockets keep the kernel default, which on Linux (IP_PMTUDISC_WANT) sets DF
// on datagrams up to the known path MTU and fragments only larger ones; RFC
// 8656 §7.2 leaves that choice to the server, as coturn does.
//
// pion's error responses carry no reason phrase. The same wrapper adds the
// RFC 8489/8656 phrase (401 Unauthorized, 438 Stale Nonce, 486 Allocation
// Quota Reached, ...) on the way out. An error response with
// MESSAGE-INTEGRITY is signed again with the key of the username of the
// request with the same transaction ID (remembered for up to 4096 requests in
// flight); if that key does not verify pion's signature, the response is sent
// unchanged. ChannelData and indications pass the wrapper after a two-byte
// check.
//
// # Relay performance
//
// The listener and the relayed sockets are read with recvmmsg (up to 32 and
// 8 datagrams per call, through golang.org/x/net), which saves most receive
// system calls under load at the price of 8 × 1600 bytes of buffers per
// allocation. The listener asks for 4 MiB socket buffers as coturn does, and
// relayed sockets for a 1 MiB receive buffer (the kernel caps both at
// net.core.rmem_max/wmem_max), so bursts are not dropped by a default
// 208 KiB buffer. Package turnbench measures server CPU per relayed message
// against coturn.
//
// # Limits
//
// Only UDP relaying over a UDP listener is offered: TCP allocations (RFC 6062)
// are refused, and RFC 5780 (CHANGE-REQUEST) is not supported. Peers are
// filtered by address: a relay on a public address does not relay to
// loopback, private, link-local, multicast or unspecified addresses, while a
// relay on loopback or a private network may reach its own kind. Datagrams
// larger than pion's 1600-byte read buffer are dropped.
package turnserver
