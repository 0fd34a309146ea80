// Package identity provides the Ed25519 identities of the Internet of People:
// network IDs, domain-separated signatures and an encrypted keystore.
//
// # Network IDs
//
// Every participant — person, server, application — is an Ed25519 key pair.
// Its network ID ([ID]) is the SHA-256 hash of the 32-byte public key. The
// only textual form of an ID is 64 lowercase hexadecimal characters;
// [ParseID] also accepts upper case and nothing else (no prefixes, no
// whitespace, no other encodings). [ID.Short] gives the first 12 characters
// for logs; it is not unique and is never accepted as input, except by
// [Keystore.Resolve], which looks prefixes up among local identities.
//
// # Domain separation
//
// Every signature is made for one [Domain], a short string such as
// "iop/profile/1" naming what is signed and the version of its encoding. The
// domain is the context string of Ed25519ctx (RFC 8032, section 5.1), so a
// signature made for one domain never verifies in another: a signed profile
// cannot be replayed as a challenge response or a hosting contract, whatever
// the bytes look like. Plain (context-free) Ed25519 is never used. Domains
// are constants in code; [Key.Sign] panics on an empty domain or one longer
// than 255 bytes, and [Verify] rejects such a domain.
//
// # Keystore
//
// A [Keystore] keeps private keys in <home>/keys/<id>.key, one file per
// identity, with files mode 0600 and directories mode 0700. The file
// <home>/keys/default holds the ID of the default identity; the first
// identity added becomes the default.
//
// A key file is a JSON object (at most 64 KiB):
//
//	{
//	  "version": 1,
//	  "id": "<64 hex characters>",
//	  "name": "alice",
//	  "created": "2025-01-02T03:04:05.123456789Z",
//	  "public_key": "<base64, 32 bytes>",
//	  "kdf": {"name": "scrypt", "n": 32768, "r": 8, "p": 1, "salt": "<base64, 16-64 bytes>"},
//	  "cipher": {"name": "xchacha20poly1305", "nonce": "<base64, 24 bytes>", "ciphertext": "<base64, 48 bytes>"}
//	}
//
// The 32-byte Ed25519 seed is sealed with XChaCha20-Poly1305 under a key
// derived from the passphrase with scrypt. The AEAD's additional data is a
// length-prefixed encoding of every other field (version, ID, name, created,
// KDF name, parameters and salt, cipher name), so none of them can be changed
// or swapped between files without the passphrase: a tampered file fails to
// open exactly as a wrong passphrase does. The public key is stored in clear
// so that identities can be listed without a passphrase; it must hash to the
// ID, and a decrypted seed must yield that same public key.
//
// Key files are untrusted input (they are also the export format). Decoding
// rejects unknown fields, trailing data and out-of-range values, and bounds
// the scrypt parameters (N a power of two at most 2^20, r·p at most 64,
// memory 128·r·N at most 1 GiB, work N·r·p at most 2^24) so that a hostile
// file cannot exhaust memory or time.
//
// Every write goes to a temporary file in the same directory, is synced, and
// is then renamed (or linked, when the file must not already exist) into
// place before the directory itself is synced.
package identity
