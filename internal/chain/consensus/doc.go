// Package consensus holds the consensus rules of the IoP token chain: the
// ledger rules every node applies to a block, the typed transaction
// payloads (licence and cap administration, contribution contracts and
// votes), the chain State those rules act on with exact undo, and the
// Engine that decides who may produce a block and how its work is proven.
//
// # Engines
//
// An Engine answers NextBits (the difficulty of the next block), CheckProof
// (a header's proof of work on its own, to drop junk orphans), CheckHeader
// (difficulty and proof on top of the parent chain) and CheckProducer (may
// this block's producer mine it, given the state before it). LicensedPoW is
// the 2017 IoP chain's engine: bitcoin's SHA-256d proof of work and
// retarget, licensed miners, the per-miner cap. The ledger and contract
// rules below do not depend on the engine; a second engine (randomized
// PoS-filtered PoW) plugs in behind the same interface.
//
// # Ledger rules (btcd-like)
//
// Context-free (CheckBlockSanity; a failure says nothing about the header's
// hash): proof of work; at least one and at most types.MaxBlockTxs
// transactions; at most types.MaxBlockSize bytes; the first transaction and
// only the first is a coinbase; a coinbase has no inputs and no payload;
// every other transaction has inputs and outputs; outputs are worth 1 to
// MaxSupply units and sum to at most MaxSupply; no input spends the same
// output twice; payloads decode; the Merkle root matches and is not
// mutated (CVE-2012-2459); no two transactions share an ID.
//
// Header context: bits equal the engine's NextBits; the timestamp is after
// the median of the last MedianTimeBlocks blocks and at most MaxTimeOffset
// after the node's clock.
//
// State context (State.Connect), in order: the engine's producer check; the
// coinbase's height is the block's and its Prev the header's Prev, so a
// coinbase cannot be replayed on another height or fork; the contract
// schedule runs (below); each transaction in block order: LockTime at most
// the block's height, every input spends an unspent output — outputs of
// earlier transactions of the same block may be spent, later ones may not
// (btcd's rule: they do not exist yet) — whose address is the network ID
// of the input's public key, coinbase outputs only after CoinbaseMaturity
// blocks, outputs at most the inputs (the difference is the fee), no output
// overwrites an unspent one, then the payload's effect; the coinbase starts
// with exactly the contract payments due, and its remaining (miner) outputs
// total at most Subsidy(height) + fees; finally all signatures — the
// coinbase's miner signature and every input's — are verified in parallel
// on SigWorkers goroutines (GOMAXPROCS by default), reporting the failure
// at the lowest position so the error does not depend on scheduling.
//
// # Payloads
//
// A payload's first byte is its kind; integers are minimal unsigned
// varints; decoding is strict (exact length, no trailing bytes).
//
//	0x01 admin    op(1) [key(32) | factor(1)]
//	              op 1 add licence, 2 remove licence (+ miner public key),
//	              3 enable cap (+ factor 1..255), 4 disable cap
//	0x02 proposal reward per block, duration in blocks, count (1..8),
//	              count × (address(32), amount per block)
//	0x03 vote     contract ID(32), choice(1): 1 yes, 0 no
//
// An admin payload is valid only if at least one input's public key is one
// of Params.AdminKeys (its signature proves the admin). Adding a licensed
// key or removing an unlicensed one is an error. Effects take place when
// the block connects, in transaction order, and are undone exactly when it
// disconnects: a licence granted in block N lets its key mine from block
// N+1; a licence in a mempool or on a side branch counts for nothing.
//
// # Licences and the cap
//
// From LicenceActivationHeight on, the coinbase's miner key must hold a
// licence in the state before the block. When the cap is enabled with
// factor f and N keys are licensed, a key may have at most
// cap = ceil(f × CapWindow / N) blocks among the CapWindow blocks before the
// block it mines; a key already at the cap is rejected (ErrMinerCapped) and
// waits until its blocks leave the window. The 2017 chain rounded down; we
// round up so that N × cap >= CapWindow: with floor division and factor 1
// the licensed miners together cannot fill a window and the chain stalls.
// The window is a ring of the last CapWindow miners with a count per key;
// each block subtracts the block leaving the window and adds its own, O(1)
// per block, and both are journaled. Every block is counted, including
// those mined before activation. No key is exempt: the 2017 chain exempted
// the admin addresses, but an admin key mines only if it is licensed, and
// then under the same cap, so no key can mine without limit.
//
// # Contribution contracts
//
// A proposal transaction's output 0 is its deposit (at least CCDepositMin)
// and its ID is the contract's. Its reward per block is 1 to
// CCMaxRewardPerContract and equals the sum of the beneficiaries' amounts;
// its duration is 1 to CCMaxDuration blocks. A vote's weight is the value
// of its output 0, the vote coin. The life cycle of a contract proposed at
// height H, run by the schedule at the start of every block at height h:
//
//	submitted    votes count in blocks H+1 .. H+CCVotingPeriod (the end E);
//	             spending a vote coin during voting withdraws its vote.
//	             At h = E+1 the vote is decided:
//	approved     if yes > 0 and yes > CCNoVoteWeight × no; it may start at
//	             max(E + CCActivationDelay, E+1);
//	not-approved otherwise (final; the deposit is free again).
//	queued       an approved contract whose start came but that does not
//	             fit under the ceiling.
//	executing    paid Reward per block (each beneficiary its amount) in the
//	             coinbase for Duration blocks from its start;
//	executed     after that (final; the deposit is free again).
//	cancelled    its deposit was spent while it was submitted, approved,
//	             queued or executing (final; no payment from the next block).
//
// Starting is FIFO: the approved contracts whose start has come and the
// queued ones, ordered by decision height then contract ID, start while
// the executing rewards plus theirs fit under CCCeiling(h); the first that
// does not fit blocks all behind it, so the order is deterministic and
// nothing overtakes the head of the queue. Payments are made in contract
// ID order; after a halving lowers the ceiling under the executing total,
// the contracts that no longer fit are skipped at that height (their
// duration still runs). Payments at a height never exceed CCCeiling(h) and
// the miner's subsidy never exceeds Subsidy(h), so the issuance of a block
// is at most MaxIssuance(h) and the total at most MaxSupply. Tallies and
// states change only by the votes, spends and schedule of connected
// blocks; nothing rescans the chain.
//
// # State and undo
//
// State is a set of records (bucket, key, value): the UTXO set, licences,
// the cap factor, the window ring and counts, contracts, votes, deposits
// and the height, tip and issued supply. Every change while connecting a
// block journals the record's previous value; that journal is the undo
// record, so disconnecting restores the state byte for byte and a failed
// connect rolls back. Digest hashes all records in order: tests compare
// states with it, and a store mirrors the records one to one.
package consensus
