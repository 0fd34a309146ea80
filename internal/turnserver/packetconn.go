package turnserver

import (
	"encoding/binary"
	"net"
	"sync"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// STUN header layout (RFC 8489 §5).
const (
	stunHeaderSize = 20
	stunCookie     = 0x2112A442
	methodBinding  = 0x0001
	// classMask selects the class bits C1 (0x0100) and C0 (0x0010) of the
	// message type.
	classMask     = 0x0110
	classRequest  = 0x0000
	classError    = 0x0110
	methodMask    = 0x3EEF
	maxPending    = 4096 // requests whose username is remembered for the response
	errCodeOffset = 4    // reason phrase offset inside ERROR-CODE
	listenBatch   = 32   // datagrams per receive call on the listener
	relayBatch    = 8    // datagrams per receive call on a relayed socket

	socketBuffer      = 4 << 20 // requested listener buffers, as coturn's
	relaySocketBuffer = 1 << 20 // requested receive buffer of a relayed socket
)

// reasonPhrases are the RFC 8489 §14.8 / RFC 8656 §18 reason phrases the
// server adds to pion's error responses, which carry none.
var reasonPhrases = map[stun.ErrorCode]string{
	stun.CodeTryAlternate:           "Try Alternate",
	stun.CodeBadRequest:             "Bad Request",
	stun.CodeUnauthorized:           "Unauthorized",
	stun.CodeForbidden:              "Forbidden",
	stun.CodeUnknownAttribute:       "Unknown Attribute",
	stun.CodeAllocMismatch:          "Allocation Mismatch",
	stun.CodeStaleNonce:             "Stale Nonce",
	stun.CodeAddrFamilyNotSupported: "Address Family not Supported",
	stun.CodeWrongCredentials:       "Wrong Credentials",
	stun.CodeUnsupportedTransProto:  "Unsupported Transport Protocol",
	stun.CodePeerAddrFamilyMismatch: "Peer Address Family Mismatch",
	stun.CodeConnAlreadyExists:      "Connection Already Exists",
	stun.CodeConnTimeoutOrFailure:   "Connection Timeout or Failure",
	stun.CodeAllocQuotaReached:      "Allocation Quota Reached",
	stun.CodeRoleConflict:           "Role Conflict",
	stun.CodeServerError:            "Server Error",
	stun.CodeInsufficientCapacity:   "Insufficient Capacity",
}

// listenConn is the listener socket as pion sees it. It edits the few STUN
// messages pion handles differently from what this server wants and passes
// everything else through untouched:
//
//   - an Allocate request with DONT-FRAGMENT whose MESSAGE-INTEGRITY
//     verifies loses the attribute (and is signed again with the same key),
//     so pion allocates instead of answering 420;
//   - error responses get the standard reason phrase; one that carries
//     MESSAGE-INTEGRITY is signed again with the key of the request's
//     username, or left alone when that key does not verify it.
//
// ChannelData and indications, the relayed traffic, cost two byte
// comparisons on the way out; reads are batched (see batchReader).
type listenConn struct {
	*net.UDPConn
	keys  keyFunc
	batch *batchReader

	pendMu  sync.Mutex
	pending map[[stun.TransactionIDSize]byte]string // request transaction ID -> USERNAME
}

// keyFunc returns the long-term key of username. When fresh is set it
// refuses usernames that do not parse or have expired.
type keyFunc func(username string, fresh bool) ([]byte, bool)

func newListenConn(conn *net.UDPConn, keys keyFunc) *listenConn {
	c := &listenConn{
		UDPConn: conn,
		keys:    keys,
		pending: make(map[[stun.TransactionIDSize]byte]string),
	}
	if conn != nil {
		c.batch = newBatchReader(conn, listenBatch)
	}
	return c
}

// ReadFrom reads a datagram and, for STUN requests, applies the request
// edits described on listenConn.
func (c *listenConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.batch.read(p)
	if err != nil {
		return n, nil, err
	}
	// A datagram that filled p may be truncated; pion drops it.
	if n < len(p) && isSTUN(p[:n]) && binary.BigEndian.Uint16(p)&classMask == classRequest {
		n = c.request(p[:n])
	}
	return n, addr, nil
}

// WriteTo writes p to addr, adding a reason phrase to error responses.
func (c *listenConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	// Responses only: ChannelData has 0b01 in the top bits, and the class bit
	// C1 is clear in requests and indications.
	if len(p) >= stunHeaderSize && p[0]&0xC1 == 0x01 {
		user := c.takePending([stun.TransactionIDSize]byte(p[8:stunHeaderSize]))
		if binary.BigEndian.Uint16(p)&classMask == classError {
			if q := withReason(p, user, c.keys); q != nil {
				if _, err := c.UDPConn.WriteTo(q, addr); err != nil {
					return 0, err
				}
				return len(p), nil
			}
		}
	}
	return c.UDPConn.WriteTo(p, addr)
}

// request remembers the username of an authenticated request for its
// response and strips DONT-FRAGMENT from an Allocate whose integrity
// verifies. It returns the new length of b.
func (c *listenConn) request(b []byte) int {
	if binary.BigEndian.Uint16(b)&methodMask == methodBinding {
		return len(b)
	}
	m := &stun.Message{Raw: b}
	if m.Decode() != nil || !m.Contains(stun.AttrMessageIntegrity) {
		return len(b)
	}
	var user stun.Username
	if user.GetFrom(m) != nil || len(user) == 0 {
		return len(b)
	}
	username := user.String()
	c.addPending(m.TransactionID, username)
	if m.Type.Method != stun.MethodAllocate || !m.Contains(stun.AttrDontFragment) {
		return len(b)
	}
	return stripDontFragment(m, username, c.keys)
}

// stripDontFragment rewrites the Allocate request m (decoded over its own
// Raw) without DONT-FRAGMENT, signed again with the key of username, and
// returns its new length. It leaves m unchanged, returning len(m.Raw), unless
// the original MESSAGE-INTEGRITY verifies with that key: a request that
// would fail authentication fails it unchanged.
func stripDontFragment(m *stun.Message, username string, keys keyFunc) int {
	key, ok := keys(username, true)
	if !ok || stun.MessageIntegrity(key).Check(m) != nil {
		return len(m.Raw)
	}
	out := rebuild(m, key, func(a stun.RawAttribute) ([]byte, bool) {
		return a.Value, a.Type != stun.AttrDontFragment
	})
	if out == nil || len(out) > len(m.Raw) {
		return len(m.Raw)
	}
	return copy(m.Raw, out)
}

// withReason returns a copy of the error response p with the standard
// reason phrase in its ERROR-CODE, or nil to send p unchanged: when p does
// not decode, already has a reason, has a code without a standard phrase,
// or carries a MESSAGE-INTEGRITY that the key of user does not verify.
func withReason(p []byte, user string, keys keyFunc) []byte {
	m := &stun.Message{Raw: p}
	if m.Decode() != nil {
		return nil
	}
	var ec stun.ErrorCodeAttribute
	if ec.GetFrom(m) != nil || len(ec.Reason) != 0 {
		return nil
	}
	reason, ok := reasonPhrases[ec.Code]
	if !ok {
		return nil
	}
	var key []byte
	if m.Contains(stun.AttrMessageIntegrity) {
		if user == "" {
			return nil
		}
		if key, ok = keys(user, false); !ok || stun.MessageIntegrity(key).Check(m) != nil {
			return nil
		}
	}
	return rebuild(m, key, func(a stun.RawAttribute) ([]byte, bool) {
		if a.Type != stun.AttrErrorCode {
			return a.Value, true
		}
		v := make([]byte, errCodeOffset, errCodeOffset+len(reason))
		copy(v, a.Value[:errCodeOffset])
		return append(v, reason...), true
	})
}

// rebuild encodes m again with the attributes before MESSAGE-INTEGRITY (or
// FINGERPRINT) as edit returns them (dropping those it reports false for),
// then MESSAGE-INTEGRITY with key when key is set, then FINGERPRINT when m
// had one. It returns nil if encoding fails.
func rebuild(m *stun.Message, key []byte, edit func(stun.RawAttribute) ([]byte, bool)) []byte {
	out := &stun.Message{Raw: make([]byte, 0, len(m.Raw)+64)}
	out.Type = m.Type
	out.TransactionID = m.TransactionID
	out.WriteHeader()
	for _, a := range m.Attributes {
		if a.Type == stun.AttrMessageIntegrity || a.Type == stun.AttrFingerprint {
			break
		}
		if v, keep := edit(a); keep {
			out.Add(a.Type, v)
		}
	}
	if key != nil {
		if stun.MessageIntegrity(key).AddTo(out) != nil {
			return nil
		}
	}
	if m.Contains(stun.AttrFingerprint) {
		if stun.Fingerprint.AddTo(out) != nil {
			return nil
		}
	}
	return out.Raw
}

func (c *listenConn) addPending(id [stun.TransactionIDSize]byte, user string) {
	c.pendMu.Lock()
	defer c.pendMu.Unlock()
	if len(c.pending) >= maxPending {
		// Requests pion never answered; forget an arbitrary one.
		for k := range c.pending {
			delete(c.pending, k)
			break
		}
	}
	c.pending[id] = user
}

func (c *listenConn) takePending(id [stun.TransactionIDSize]byte) string {
	c.pendMu.Lock()
	defer c.pendMu.Unlock()
	user, ok := c.pending[id]
	if ok {
		delete(c.pending, id)
	}
	return user
}

// isSTUN reports whether b has a well-formed STUN header: top bits zero,
// the magic cookie, and a length matching b.
func isSTUN(b []byte) bool {
	return len(b) >= stunHeaderSize && b[0]&0xC0 == 0 &&
		binary.BigEndian.Uint32(b[4:8]) == stunCookie &&
		int(binary.BigEndian.Uint16(b[2:4]))+stunHeaderSize == len(b)
}

// longTermKey is the server's keyFunc.
func (s *Server) longTermKey(username string, fresh bool) ([]byte, bool) {
	if fresh {
		if _, _, err := ParseUsername(username, s.now()); err != nil {
			return nil, false
		}
	}
	return turn.GenerateAuthKey(username, s.cfg.Realm, password(s.cfg.Secret, username)), true
}
