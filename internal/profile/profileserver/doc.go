// Package profileserver implements the IoP profile server: the service where
// identities register hosting, check in while online, publish their signed
// profiles (graph nodes) and are found by search.
//
// The protocol runs over libp2p streams. A client opens a stream on
// ProtocolClient (roles "client": non-customers and customers); other
// profile servers use ProtocolNeighbor. Every frame is a wirepb.Message (see
// package wire). Requests on a stream are handled one at a time in order.
//
// Conversation states follow the 2017 protocol: a stream starts with no
// conversation; StartConversation exchanges keys and challenges; CheckIn
// (hosted identities, "customers") or VerifyIdentity (anyone) prove the
// client's key. A request in the wrong state answers BAD_CONVERSATION_STATUS
// (when it needs no or a started conversation) or UNAUTHORIZED (when it needs
// a verified or checked-in one), and a request to a role that does not serve
// it answers BAD_ROLE. Malformed or oversized frames answer
// PROTOCOL_VIOLATION and close the stream.
//
// Durability: every change is committed to the node's bbolt database (with
// fsync) before it is acknowledged, so an acknowledged registration or
// profile update survives kill -9. The search index is in memory and is
// rebuilt from the database at start-up.
package profileserver
