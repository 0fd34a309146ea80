// Package vault keeps an agent's private records, such as private graph
// edges, on the user's device, encrypted at rest. Nothing in a vault is ever
// sent to a server.
//
// A vault is one small file holding a map of buckets, each a map of keys to
// values. The whole map is kept in memory; every Put or Delete re-encodes it,
// seals it and replaces the file atomically and durably (write a temporary
// file in the same directory, sync it, rename it over the vault, sync the
// directory), so after a crash the file holds the state after the last
// mutation that returned, or after the one under way.
//
// The file is
//
//	magic "IOPVAULT1" | salt (32 bytes) | nonce (24 bytes) | ciphertext
//
// The key is HKDF-SHA256 of the owner's secret (an identity key's 32-byte
// seed) with the file's salt and the info "iop/vault/1". The ciphertext is
// XChaCha20-Poly1305 with a fresh random nonce on every write and the magic
// and salt as additional data. A wrong secret and a damaged file cannot be
// told apart, so both give ErrDecrypt.
//
// The plaintext is a sequence of buckets in name order, each its name, its
// entry count and its entries in key order, every string and value prefixed
// by its length as an unsigned varint, after a leading varint bucket count.
//
// While a vault is open, its process holds an exclusive advisory lock
// (flock) on "<path>.lock", so a second Open of the same vault, in this
// process or another, fails with ErrInUse. The lock file is left in place.
package vault
