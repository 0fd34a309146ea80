// Package connect is the device-to-device connection of the Internet of
// People: it turns a call relayed by the profile server into an
// authenticated, encrypted, reliable and ordered byte stream (a net.Conn),
// usable at once over the relay, and moves it in the background to a direct
// ICE path, or a TURN-relayed one, without the application noticing.
//
// # Layers
//
//	Open ─ Noise XX over the Relay ─► Conn usable (path "relay:profile-server")
//	        │ CONTROL frames: ICE credentials, candidates, QUIC certificate fingerprint
//	        ▼
//	     pion ICE agent (host/srflx/relay candidates, udp4, no mDNS)
//	        ▼
//	     QUIC (quic-go) over the ICE connection, TLS 1.3 with per-connection
//	     self-signed certificates pinned by the fingerprints; one bidirectional stream
//	        ▼
//	     SWITCH per direction ─► path "direct" or "turn"; the relay is closed
//
// # Handshake
//
// The caller (Config.Initiator) is the Noise XX initiator:
// Noise_XX_25519_ChaChaPoly_SHA256 with fresh static keys per connection
// and the prologue "iop/connect/1\x00" || Config.Binding. Message 1 carries
// nothing; messages 2 (responder) and 3 (initiator) each carry a 97-byte
// payload, encrypted by Noise:
//
//	version (1) | Ed25519 identity public key (32) | signature (64)
//
// The signature is identity.Key.Sign(domainConnect = "iop/connect/1", m)
// with m = role ('R' or 'I') || the signer's Noise static public key ||
// the Noise handshake hash just before the message. The receiver verifies
// the signature with the same inputs and checks that the key hashes to
// Config.Peer; otherwise Open fails with an *IdentityError ("connect: peer
// proved identity X, expected Y") and closes the relay.
//
// Open returns when the handshake is done. The initiator is done after
// sending message 3, so it can write at once (the responder's first byte
// arrives 1.5 round trips after both joined). The price: when the responder
// rejects message 3, the initiator's Open has already succeeded. The
// responder then sends a REJECT frame (best effort) and closes the relay;
// the initiator's first Read fails with "connect: peer rejected the
// connection" or a relay error. The other failures fail Open on both sides.
//
// # Frames on the relay
//
// After the handshake every relay message is one Noise transport message
// (ChaCha20-Poly1305, nonces in order — the relay is ordered) whose
// plaintext is one frame: a type byte and a body.
//
//	1 DATA               application bytes (≥ 1); at most MaxMessage−17 per frame
//	2 OFFER              ICE ufrag and pwd (u8 length + bytes each), SHA-256 of our QUIC certificate (32)
//	3 CANDIDATE          one ICE candidate (trickled), 1–512 bytes
//	4 END-OF-CANDIDATES  empty
//	5 ABORT              empty: the sender gave up on the direct path
//	6 SWITCH             empty: the rest of the sender's direction comes over the direct stream
//	7 SWITCH-ACK         empty: the peer's SWITCH was received
//	8 FIN                empty: the sender's direction ends here
//	9 REJECT             reason (≤ 256 bytes): the responder refused the handshake
//
// Every decoder of network bytes is strict (exact lengths, no trailing
// bytes, size limits) and fuzzed: FuzzDecodeFrame, FuzzHandshakePayload,
// FuzzHandshakeMessage.
//
// # Direct path
//
// Unless Config.DisableICE, a background goroutine creates a pion ICE agent
// (controlling on the initiator; candidates from Config.ICEServers; udp4;
// mDNS off), sends OFFER, trickles its candidates as CANDIDATE frames and
// END-OF-CANDIDATES, and feeds the peer's frames to the agent. pion's
// acceptance timers (how long a pair of a kind must wait before it may be
// nominated: srflx 0.5 s, prflx 1 s, relay 2 s by default) are shortened to
// 0.2 s for srflx and prflx and 1 s for relay: the stream already flows on
// the relay, so waiting for a better pair only delays the move, while the
// order of preference stays (a direct pair can win 0.8 s before a TURN pair
// may). In the NAT lab with 20 ms per access link this moved the final
// path from 1.5-1.7 s to 0.7-1.0 s for direct pairs and from 2.5 s to
// 1.5-1.7 s for TURN pairs, with the same paths chosen (iop bench nat).
// Config.RelayOnly sets the relay wait to 0.
//
// Once ICE is connected, the initiator dials QUIC over the ICE connection
// (adapted to a net.PacketConn with one fixed remote address) and the
// responder listens. Each side presents a fresh self-signed Ed25519
// certificate and accepts only the certificate whose SHA-256 the peer sent
// in its OFFER over the Noise channel. The initiator opens one bidirectional
// stream and writes a 4-byte hello; the responder reads it and answers with
// its own hello. Keep-alives run every IdleTimeout/3 and the connection dies
// after IdleTimeout (default 15 s) of silence, so a vanished peer is noticed.
// Path MTU discovery is off (the ICE socket cannot set DF, and a path through
// TURN has less room): QUIC packets stay at quic-go's safe 1280-byte size.
//
// Giving up is decided once per side: the initiator may give up only until it
// writes its hello, the responder only until it writes its own. A side that
// gives up (ICE timeout, errors) sends ABORT and stays on the relay; a side
// that receives ABORT does the same. Because the responder answers the hello
// only if it has not given up, and the initiator counts the path as usable
// only after that answer, the two sides never disagree about whether the
// direct stream exists — except when the QUIC connection itself breaks
// during the exchange, which then fails the connection with an error (never
// silent loss). Config.ICETimeout (default 10 s) bounds the attempt.
//
// # Migration
//
// Each direction migrates on its own. The writer, once the direct stream is
// usable, takes the write lock, sends SWITCH as the last frame of its
// direction on the relay and writes everything after it to the stream. The
// reader delivers relay DATA in order up to SWITCH, then reads the stream.
// Since the relay and the stream are each reliable and ordered and SWITCH
// separates them, the application sees every byte exactly once and in order.
// A reader receives SWITCH only after the writer's stream is usable, and the
// stream is usable at both ends by then (see above). The receiver of SWITCH
// answers SWITCH-ACK; a side that has received the peer's SWITCH and the ACK
// of its own closes the relay (Relay.Close), so the profile server frees the
// call. If the direct path cannot be had, the connection simply stays on the
// relay. Path reports the path this side writes on; WaitPath returns once it
// is final; Timing tells when the handshake and the final path were reached.
//
// # Closing
//
// Close sends FIN on the current write path (a FIN frame on the relay, the
// QUIC stream's FIN on the direct path). The peer's Read returns io.EOF after
// all data before it, and the peer answers with its own FIN; Close waits up
// to 3 s for that answer (it confirms delivery before QUIC or the relay is
// torn down), then frees the ICE agent, QUIC, the relay and every goroutine.
// There is no half-close: once the peer's FIN arrived, Write returns
// ErrPeerClosed. A peer that vanishes — the relay ends without FIN, or the
// QUIC idle timeout passes — makes Read and Write return errors.
//
// # Security
//
// Who can read what: the profile server and every relay on the way see only
// the Noise handshake (ephemeral and encrypted static keys) and ciphertext;
// the identity keys travel encrypted in messages 2 and 3. A TURN server sees
// QUIC packets, which are encrypted with TLS 1.3 keys it cannot obtain. Only
// the two devices hold the Noise transport keys and the QUIC keys.
//
// Why a device cannot claim another identity: the signature in its payload
// must verify under the claimed Ed25519 key, and it covers the Noise static
// key the device proves possession of in the same handshake (es/se) and the
// handshake hash, which includes both fresh ephemeral keys and the prologue
// with the binding. A signature therefore cannot be replayed in another
// session, moved to another static key, reflected (the role is signed), or
// transplanted to another call (different Binding means different
// prologue, so the handshake fails). The domain separates these signatures
// from every other use of identity keys.
//
// Why the direct path is as trustworthy as the relay channel: the QUIC
// certificate fingerprints travel inside the authenticated Noise channel,
// and each side accepts only the exact certificate announced by the peer, so
// the QUIC session is bound to both identity keys transitively. ICE
// credentials also travel only inside Noise, so no one else can answer the
// connectivity checks (and the QUIC pinning would reject them anyway).
//
// # Limits
//
//   - No path migration after the switch: if the direct path dies later, the
//     connection fails (it does not fall back to the relay, which is closed).
//   - Control frames share the relay with data: if the application stops
//     reading, received data fills a 64-chunk queue and the migration waits.
//   - Throughput on the direct path is bounded by per-packet work: one
//     syscall per 1280-byte packet through pion's ICE sockets, where quic-go
//     cannot use its GSO and batched reads (it sees no *net.UDPConn). On
//     loopback it reaches roughly 40–65 MB/s, against ~190 MB/s for quic-go
//     on a plain UDP socket and ~1.5 GB/s for TCP (BenchmarkThroughput).
//   - udp4 only; no ICE restarts; no TCP candidates.
package connect
