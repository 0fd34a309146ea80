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
package graph
