// Package blockchain stores the IoP token chain and chooses its best chain.
//
// A Chain keeps every block it accepted in a bbolt database: block bodies by
// hash, the block index (header, height, status; cumulative work is
// recomputed on load), the consensus state's records (UTXO set, licences,
// cap window, contracts, votes — see package consensus), one undo record
// per main-chain block, and the tip. Connecting or disconnecting a block is
// one bbolt transaction that writes its undo record, every state record it
// changed and the new tip, so a process killed at any moment reopens on a
// consistent tip whose state is exactly that tip's.
//
// ProcessBlock follows btcd: context-free sanity checks (a block failing
// them is forgotten, never remembered as invalid, because its header may
// come again with a valid body: the CVE-2012-2459 case), then an orphan pool
// (bounded, oldest evicted) for blocks whose parent is unknown, then the
// header's contextual checks (difficulty, proof of work, median time past,
// future limit) against its own branch, then storage and fork choice: the
// branch with the most cumulative work is the main chain. A block extending
// the tip is connected at once; a side branch with more work causes a
// reorganisation: disconnect to the fork point, connect the branch; if one
// of its blocks breaks a rule it and its descendants are marked invalid and
// the old main chain is connected again. Orphans waiting for a connected
// block are processed after it.
//
// The whole UTXO set and side state live in memory (the database mirrors
// them record by record); the chain loads them at start. That suits the
// devnet and test networks; a bounded cache over the stored UTXO bucket is
// the step for main-net sizes.
package blockchain
