// Package graph defines the records of the IoP graphchain: profiles, the
// nodes of the graph, each owned and signed by one identity key.
//
// A profile travels as the exact bytes its owner signed (an encoded
// ProfileInformation message) plus an Ed25519ctx signature in the
// identity.DomainProfile domain. Readers verify the signature over those
// bytes and use the values decoded from the same bytes; nothing is ever
// re-encoded before it is verified. A profile's Sequence strictly increases
// with every change, so an older record can never replace a newer one.
//
// Field limits follow the 2017 IoP protocol: type ≤ 64 bytes (fixed at
// hosting registration), non-empty name ≤ 64 bytes, location in microdegrees
// or NoLocation, extra data ≤ 200 bytes, image ≤ 20 KiB and thumbnail ≤ 5 KiB
// (PNG or JPEG) referenced by their SHA-256 hashes.
//
// # Edges
//
// An edge is a relationship of a type such as "work/employs" from an issuer
// (the predecessor node) to a recipient, after the 2017 relationship cards.
// The issuer signs a [Card] — type (at most 64 bytes), validity window,
// both keys, properties, public or private visibility, creation time and a
// random nonce — by signing its [CardID] in the [DomainEdgeCard] domain. The
// card ID is the SHA-256 of the domain, a zero byte and the card's encoding
// with its cardId field zeroed, and the encoding carries it, so a card whose
// ID does not match its content is rejected. The recipient signs an
// [Acceptance] naming the card and an application ID (1 to 32 bytes) in
// [DomainEdgeAccept]. An [Edge] exists only when both signatures verify and
// the acceptance names the card; types whose rules say IssuerOnly (such as
// "social/follows") need the issuer's signature alone.
//
// [TypeRules] say which party controls an edge of a type, who may revoke it
// and who may change which properties; by default the issuer controls the
// edge and only it may revoke or change it. [Rules] gives the built-in rules
// of a type or of its nearest '/'-separated parent, else the defaults. After
// the edge is made, revocations and property changes are [Record] values
// signed in [DomainEdgeRecord] by a party the rules allow, with sequence
// numbers that strictly increase over the edge's records; a revocation is
// final. [Derive] verifies the records and returns the edge's [EdgeState]:
// valid, revoked, expired or not yet valid, and its current properties.
// [EncodeProof] packs a card, its acceptance and its records into one blob
// that [OpenProof] verifies offline; [VerifyProofs] does so for many on
// several cores.
//
// Every edge record is a protobuf message written field by field in the one
// canonical form (ascending fields, zero values omitted, minimal varints);
// decoders reject any other form, unknown fields and trailing bytes. As for
// profiles, the signed bytes travel and are verified as they are.
package graph
