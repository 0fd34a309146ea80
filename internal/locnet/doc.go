// Package locnet is the IoP location based network (LOC): an overlay in
// which every node declares where it is, keeps its nearest nodes as
// neighbours and a thinned world map of "colleagues", and answers "which
// nodes are closest to this point" from its own map or by walking towards
// the point. It ports the algorithm of the 2017 iop-location-based-network
// (its facts; the code is ours) and fixes its known gaps.
//
// # Records
//
// A node describes itself in a [NodeInfo]: its Ed25519 public key (the same
// key as its libp2p peer ID), contact multiaddrs, location in microdegrees,
// services ({Type, Data ≤ 1 KiB}, e.g. "profile"), a sequence number and an
// issue time. The node signs the protobuf encoding (locpb.NodeInfo) in the
// domain "iop/loc-nodeinfo/1", and the record travels as those exact bytes
// with the key and signature (locpb.SignedNodeInfo). Its network ID is
// SHA-256 of the key; it is never carried separately, so an ID cannot
// disagree with a key. [OpenNodeInfo] checks the signature over the carried
// bytes before decoding them; nothing is re-encoded.
//
// A node keeps at most one info per node. A higher sequence replaces a
// lower one; an older one, or the same sequence with other content, is a
// replay and is refused, as are infos issued more than MaxClockSkew in the
// future or more than MaxInfoAge (48 h) ago. Nodes re-sign their info at
// every maintenance, so live infos stay fresh, and sequences start at the
// issue time in milliseconds, so a restarted node without storage still
// counts upwards.
//
// # Protocol
//
// Requests (locpb.Request) and responses (locpb.Response, with the 2017
// status codes) go through a small [Transport]; a [Handler] (a *Node)
// answers them. Every relation request carries the requester's signed
// info and must come from that node (the transport authenticates the
// caller); the answer says whether the relation was accepted and carries
// the acceptor's own signed info, which must be the node that was asked,
// and the requester's address as the acceptor saw it.
//
//   - AcceptColleague, RenewColleague, AcceptNeighbour, RenewNeighbour
//   - GetNodeCount: the size of the map, the node included
//   - GetRandomNodes(max, includeNeighbours)
//   - GetClosestNodes(location, radius km, max, includeNeighbours): the
//     node itself included, closest first
//   - GetNodeInfo
//
// Lists of nodes are lists of signed infos: each one is verified, and
// anything that fails is dropped and counted. A node stores an info only
// when it got it from the node itself: in a relation request that node
// sent, or in that node's answer to a request this node sent it.
//
// [Libp2pTransport] carries the protocol on libp2p as "/iop/loc/1": one
// request per stream, length-prefixed protobuf frames of at most 1 MiB
// (internal/wire), a 10 s deadline, per-peer rate and concurrency limits
// answered with BUSY ([ErrBusy]). The caller's ID comes from its peer key;
// a callee whose answer carries another key's info is [ErrWrongNode].
// Package memnet is an in-memory network of synchronous calls for
// simulations of thousands of nodes in one goroutine under a virtual clock.
//
// # The algorithm
//
// Each entry of a node's map has a relation (colleague or neighbour), a
// role (initiator or acceptor: the initiator renews) and an expiry
// (EntryExpiry, 24 h, after the last renewal). Constants are the 2017 ones:
// 50 neighbours, renewal every 7 h, discovery every 5 min, bootstrap fill
// rate 0.75, 5 discovery points, 10 merge nodes.
//
// Colleagues: bubbleSize(d) = log10(d + 2500) × 501 − 1700 km for a node d
// km away (about 2.4 km nearby, 352 km at 10,000 km). A new colleague is
// refused when its bubble and the bubble of the closest existing colleague
// to it overlap. A colleague may become a neighbour, never the reverse.
//
// Neighbours: a node wants a neighbour that ranks among its 50 closest
// (fewer than 50 neighbours, or closer than the 50th). It accepts a request
// or renewal from a node it wants, and also from a node that may want it:
// one for which it knows fewer than 50 nodes closer to the requester than
// itself (at most MaxNeighbours such). A renewal from a node that fits
// neither is refused, and both ends drop the relation.
//
// Bootstrap (Tick repeats it every 5–10 min while the map is empty):
// InitializeWorld asks a seed for its node count N and 100 random nodes
// and tries them as colleagues until the map holds 0.75 N, asking new
// colleagues for more random nodes; InitializeNeighbourhood walks from the
// closest known node towards the node's own location until no closer node
// appears, then searches greedily: it tries the closest unasked candidate as
// a neighbour, asks it for its closest nodes and continues while candidates
// rank among the 50 closest.
//
// Maintenance (every 7 h): re-sign the info; renew the colleague relations
// it initiated and the neighbour relations it initiated and still wants;
// drop those it no longer wants; take over (renew as initiator) a wanted
// neighbour relation whose initiator stopped renewing, and drop one it does
// not want; expire; bootstrap again if the map is empty; then refresh the
// neighbourhood by asking 5 random close neighbours for their closest nodes
// and following every new node that ranks among the 50 closest. Tick also
// drops expired entries at every call. DiscoverUnknownAreas (every 5 min)
// asks the known node closest to 5 random points for its closest node and
// tries an unknown one as a neighbour, else as a colleague (a refusal is
// remembered for 7 h). MergeSplits (every 7 h) takes 10 random nodes from a
// random seed, tries each as a colleague and then as a neighbour, and walks
// from them towards its own location: nearby nodes it did not know mean
// another network, and the neighbourhood search continues from them.
//
// ExploreClosest walks like 2017 ExploreNetworkNodesByDistance: ask the
// closest node found for its closest nodes to the point, until the closest
// stops changing or the hop limit; it also asks the second and third
// closest before it stops.
//
// # What changed from 2017
//
//   - Node IDs are authenticated keys; node infos are signed, sequenced and
//     checked as above. 2017 had no authentication or integrity checks.
//   - Neighbour relations live while either end wants the other. 2017 kept
//     only relations the acceptor ranked among its 50, so a node beside a
//     dense city could not get its nearest nodes (its 500-node case
//     failed). Relations nobody wants are dropped at once or when their
//     initiator stops renewing, instead of lingering until expiry.
//   - Every maintenance refreshes the neighbourhood, so a node learns of
//     nodes that joined near it later; colleagues that rank among the 50
//     closest become neighbours.
//   - MergeSplits walks from the other network towards the node, so two
//     networks that grew apart merge within a few periods.
//   - Explorations ask the three closest nodes before stopping.
//   - Tables are in memory behind a write-through [Store]; calls are made
//     one at a time through the transport, never under the node's lock.
//
// # Use
//
// A service creates a [Node] with [New] and a [Config] (Key, Location,
// Addrs, Services, Seeds, Transport), runs it with [Node.Run] and stops it
// with [Node.Close]. [Node.Neighbours], [Node.Colleagues] and
// [Node.ClosestNodes] answer from the map, [Node.ExploreClosest] walks the
// network, [Node.SetServices] re-signs the node's info and pushes it to its
// neighbours, and [Node.Subscribe] delivers neighbourhood changes. A
// simulation instead calls [Node.Bootstrap] and [Node.Tick] on a virtual
// clock (see locnettest).
package locnet
