package chaincfg

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"time"

	"github.com/iop-go/iop/internal/chain/pow"
)

// Units is the number of indivisible units in one token.
const Units = 100_000_000

// MaxSupply is the hard cap on the number of units that can ever exist:
// 21,000,000 tokens. The sum of MaxIssuance over all heights must not exceed
// it (Validate checks this).
const MaxSupply = 21_000_000 * Units

// Genesis holds the values from which the genesis block is built. The
// package has no block types; the block package serialises these values in
// its own header and coinbase formats.
//
// The genesis block is identified by its hash, which every node computes
// from these values, and is not checked for proof of work (as in btcd, it is
// never run through block validation). Nonce is therefore 0: the genesis
// header need not meet its own target.
type Genesis struct {
	// Version is the header version of the genesis block.
	Version int32
	// Timestamp is the genesis header time, in Unix seconds.
	Timestamp int64
	// Bits is the compact target of the genesis header; it equals the
	// network's PowLimitBits.
	Bits uint32
	// Nonce is the header nonce (0, see above).
	Nonce uint32
	// CoinbaseMessage is the data carried in the genesis coinbase input. It
	// differs per network, so the genesis hashes differ.
	CoinbaseMessage string
	// CoinbaseValue is the value of the genesis coinbase output. It is 0:
	// the genesis block issues nothing (Subsidy(0) == 0), so its output
	// needs no special case in the UTXO set or in supply accounting.
	CoinbaseValue uint64
	// CoinbaseKey is the Ed25519 public key the genesis coinbase output pays
	// to, or nil for a provably unspendable output. All networks use nil.
	CoinbaseKey []byte
}

// Params are the consensus parameters of one network.
type Params struct {
	// Name is the network's name: "main", "test" or "devnet".
	Name string
	// Magic identifies the network on the wire and is the chain ID that
	// signatures bind to (every signed message is domain-separated with it),
	// so a signature made for one network is invalid on the others. It is
	// distinct per network.
	Magic [4]byte
	// AddressPrefix is the human-readable prefix of addresses on this
	// network ("iop", "tiop", "diop").
	AddressPrefix string
	// Genesis describes the genesis block.
	Genesis Genesis

	// PowLimit is the largest (easiest) allowed proof-of-work target.
	PowLimit *big.Int
	// PowLimitBits is PowLimit in compact form (pow.BigToCompact(PowLimit)).
	PowLimitBits uint32
	// TargetSpacing is the intended time between blocks.
	TargetSpacing time.Duration
	// TargetTimespan is the intended duration of one retarget period,
	// RetargetInterval × TargetSpacing. It must be whole seconds.
	TargetTimespan time.Duration
	// RetargetInterval is the number of blocks between difficulty
	// adjustments (2016). The target of a block at a height that is a
	// multiple of it is recomputed with pow.Retarget.
	RetargetInterval int64
	// NoRetarget disables difficulty adjustment: every block carries
	// PowLimitBits. The devnet uses it with an easy limit so that a laptop
	// mines a block in milliseconds.
	NoRetarget bool
	// MaxTimeOffset is how far in the future (by local adjusted time) a
	// block timestamp may be (2 h).
	MaxTimeOffset time.Duration
	// MedianTimeBlocks is the number of previous blocks whose median
	// timestamp (pow.MedianTime) a new block's timestamp must exceed (11).
	MedianTimeBlocks int

	// CoinbaseMaturity is the number of blocks after which coinbase outputs
	// may be spent: an output created at height h is spendable in a block at
	// height >= h + CoinbaseMaturity.
	CoinbaseMaturity int64
	// BaseSubsidy is the miner subsidy of a block in era 0, in units.
	BaseSubsidy uint64
	// HalvingInterval is the number of blocks per era; Subsidy and
	// CCCeiling halve at every multiple of it.
	HalvingInterval int64

	// AdminKeys are the Ed25519 public keys allowed to sign licence and cap
	// admin transactions (grant or revoke a licence, enable or disable the
	// cap, change its factor).
	AdminKeys [][]byte
	// PlaceholderAdminKeys reports that AdminKeys are placeholders whose
	// private keys nobody holds (mainnet before launch): no admin
	// transaction can be signed. A node may refuse to mine on such a
	// network.
	PlaceholderAdminKeys bool
	// LicenceActivationHeight is the first height whose block must be mined
	// by a licensed key; lower heights (except genesis) may be mined by
	// anyone, which lets the first admin transactions be mined.
	LicenceActivationHeight int64
	// InitialLicences are the Ed25519 public keys licensed to mine from
	// genesis on.
	InitialLicences [][]byte
	// CapWindow is the length in blocks of the rolling window over which
	// each licence's mined blocks are counted for the cap (2016).
	CapWindow int64
	// DefaultCapFactor is the cap factor in force until an admin transaction
	// changes it: while the cap is enabled a licence may mine at most
	// factor × CapWindow / (number of licences) blocks per window, i.e.
	// factor times the average share (3 = the whitepaper's "3x the
	// average").
	DefaultCapFactor int64
	// CapEnabled reports whether the cap is enforced from
	// LicenceActivationHeight before any admin transaction enables or
	// disables it.
	CapEnabled bool

	// CCDepositMin is the smallest deposit, in units, a contribution
	// contract proposal must lock (frozen while the contract lives; spending
	// it cancels the contract).
	CCDepositMin uint64
	// CCRewardCeiling is the era-0 limit, in units per block, on the sum of
	// the rewards of all executing contracts (CCCeiling halves it with the
	// subsidy). Approved contracts that do not fit are queued.
	CCRewardCeiling uint64
	// CCMaxRewardPerContract is the largest per-block reward, in units, a
	// single contract may request. A contract can only execute at a height
	// whose CCCeiling is at least its reward.
	CCMaxRewardPerContract uint64
	// CCActivationDelay is the number of blocks between the end of a
	// proposal's voting period (its approval) and the first block of its
	// execution.
	CCActivationDelay int64
	// CCVotingPeriod is the number of blocks, starting with the block after
	// the proposal, in which votes for it are counted.
	CCVotingPeriod int64
	// CCMaxDuration is the largest number of blocks a contract may execute
	// (be paid) for.
	CCMaxDuration int64
	// CCNoVoteWeight multiplies the weight of NO votes: a proposal is
	// approved iff YES > CCNoVoteWeight × NO (5, as in 2017).
	CCNoVoteWeight int64
}

// era returns the halving era of height, or ok=false for heights that issue
// nothing (genesis, negative heights, invalid parameters).
func (p *Params) era(height int64) (uint64, bool) {
	if height <= 0 || p.HalvingInterval <= 0 {
		return 0, false
	}
	return uint64(height / p.HalvingInterval), true
}

// halve returns v >> era (0 once era reaches 64).
func halve(v, era uint64) uint64 {
	if era >= 64 {
		return 0
	}
	return v >> era
}

// Subsidy returns the miner subsidy in units of the block at height:
// 0 for genesis (and negative heights), else BaseSubsidy halved once per
// complete HalvingInterval (BaseSubsidy >> (height / HalvingInterval)). See
// the package documentation for the schedule and its totals.
func (p *Params) Subsidy(height int64) uint64 {
	e, ok := p.era(height)
	if !ok {
		return 0
	}
	return halve(p.BaseSubsidy, e)
}

// CCCeiling returns the most, in units, that the coinbase of the block at
// height may pay to executing contribution contracts in total:
// CCRewardCeiling halved like the subsidy, 0 for genesis.
func (p *Params) CCCeiling(height int64) uint64 {
	e, ok := p.era(height)
	if !ok {
		return 0
	}
	return halve(p.CCRewardCeiling, e)
}

// MaxIssuance returns the most, in units, that the block at height may
// create: Subsidy(height) + CCCeiling(height). A coinbase may claim less
// (fees are not issuance and come on top).
func (p *Params) MaxIssuance(height int64) uint64 {
	return p.Subsidy(height) + p.CCCeiling(height)
}

// TotalMaxIssuance returns the sum of MaxIssuance over all heights, computed
// in closed form per era, and ok=false if the parameters are invalid or the
// sum overflows uint64.
func (p *Params) TotalMaxIssuance() (total uint64, ok bool) {
	if p.HalvingInterval <= 0 {
		return 0, false
	}
	n := uint64(p.HalvingInterval)
	for e := uint64(0); e < 64; e++ {
		perBlock, carry := bits.Add64(halve(p.BaseSubsidy, e), halve(p.CCRewardCeiling, e), 0)
		if carry != 0 {
			return 0, false
		}
		blocks := n
		if e == 0 {
			blocks-- // genesis issues nothing
		}
		hi, lo := bits.Mul64(perBlock, blocks)
		if hi != 0 {
			return 0, false
		}
		total, carry = bits.Add64(total, lo, 0)
		if carry != 0 {
			return 0, false
		}
	}
	return total, true
}

// Validate checks the parameters for internal consistency: positive
// spacings, intervals and maturities, a proof-of-work limit that matches its
// compact form, a supply schedule whose TotalMaxIssuance stays within
// MaxSupply, contribution-contract limits within the issuance budget, and
// well-formed keys. It returns all problems found, joined.
func (p *Params) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}

	if p.Name == "" {
		bad("empty Name")
	}
	if p.Magic == [4]byte{} {
		bad("zero Magic")
	}
	if p.AddressPrefix == "" {
		bad("empty AddressPrefix")
	}

	// Proof of work.
	two256 := new(big.Int).Lsh(big.NewInt(1), 256)
	switch {
	case p.PowLimit == nil || p.PowLimit.Sign() <= 0:
		bad("PowLimit must be positive")
	case p.PowLimit.Cmp(two256) >= 0:
		bad("PowLimit %x must be below 2^256", p.PowLimit)
	default:
		if c := pow.BigToCompact(p.PowLimit); c != p.PowLimitBits {
			bad("PowLimitBits %08x does not encode PowLimit (%08x)", p.PowLimitBits, c)
		}
		if t := pow.CompactToBig(p.Genesis.Bits); t.Sign() <= 0 || t.Cmp(p.PowLimit) > 0 {
			bad("genesis bits %08x outside (0, PowLimit]", p.Genesis.Bits)
		}
	}
	if p.TargetSpacing <= 0 {
		bad("TargetSpacing %v must be positive", p.TargetSpacing)
	}
	if p.RetargetInterval <= 0 {
		bad("RetargetInterval %d must be positive", p.RetargetInterval)
	} else if p.TargetTimespan != time.Duration(p.RetargetInterval)*p.TargetSpacing {
		bad("TargetTimespan %v != RetargetInterval × TargetSpacing", p.TargetTimespan)
	}
	if p.TargetTimespan < time.Second || p.TargetTimespan%time.Second != 0 {
		bad("TargetTimespan %v must be a positive whole number of seconds", p.TargetTimespan)
	}
	if p.MaxTimeOffset <= 0 {
		bad("MaxTimeOffset %v must be positive", p.MaxTimeOffset)
	}
	if p.MedianTimeBlocks <= 0 || p.MedianTimeBlocks%2 == 0 {
		bad("MedianTimeBlocks %d must be positive and odd", p.MedianTimeBlocks)
	}

	// Supply.
	if p.CoinbaseMaturity <= 0 {
		bad("CoinbaseMaturity %d must be positive", p.CoinbaseMaturity)
	}
	if p.HalvingInterval <= 0 {
		bad("HalvingInterval %d must be positive", p.HalvingInterval)
	}
	if p.BaseSubsidy == 0 {
		bad("BaseSubsidy must be positive")
	}
	if total, ok := p.TotalMaxIssuance(); !ok || total > MaxSupply {
		bad("total maximum issuance %d (ok=%v) exceeds MaxSupply %d", total, ok, uint64(MaxSupply))
	}
	if p.Genesis.CoinbaseValue != 0 {
		bad("genesis coinbase value %d must be 0", p.Genesis.CoinbaseValue)
	}
	if p.Genesis.CoinbaseKey != nil && len(p.Genesis.CoinbaseKey) != ed25519.PublicKeySize {
		bad("genesis coinbase key has %d bytes", len(p.Genesis.CoinbaseKey))
	}
	if p.Genesis.Timestamp <= 0 {
		bad("genesis timestamp %d must be positive", p.Genesis.Timestamp)
	}

	// Licensed mining.
	if len(p.AdminKeys) == 0 {
		bad("no AdminKeys")
	}
	checkKeys(bad, "AdminKeys", p.AdminKeys)
	checkKeys(bad, "InitialLicences", p.InitialLicences)
	if p.LicenceActivationHeight < 1 {
		bad("LicenceActivationHeight %d must be at least 1", p.LicenceActivationHeight)
	}
	if p.CapWindow <= 0 {
		bad("CapWindow %d must be positive", p.CapWindow)
	}
	if p.DefaultCapFactor < 1 || p.DefaultCapFactor > 255 {
		bad("DefaultCapFactor %d must be in [1, 255]", p.DefaultCapFactor)
	}

	// Contribution contracts.
	if p.CCDepositMin == 0 {
		bad("CCDepositMin must be positive")
	}
	if p.CCRewardCeiling == 0 {
		bad("CCRewardCeiling must be positive")
	}
	if p.CCMaxRewardPerContract == 0 || p.CCMaxRewardPerContract > p.CCRewardCeiling {
		bad("CCMaxRewardPerContract %d must be in (0, CCRewardCeiling]", p.CCMaxRewardPerContract)
	}
	if p.CCActivationDelay < 0 {
		bad("CCActivationDelay %d must not be negative", p.CCActivationDelay)
	}
	if p.CCVotingPeriod <= 0 {
		bad("CCVotingPeriod %d must be positive", p.CCVotingPeriod)
	}
	if p.CCMaxDuration <= 0 {
		bad("CCMaxDuration %d must be positive", p.CCMaxDuration)
	}
	if p.CCNoVoteWeight < 1 {
		bad("CCNoVoteWeight %d must be at least 1", p.CCNoVoteWeight)
	}

	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("chaincfg: invalid params %q: %w", p.Name, err)
	}
	return nil
}

func checkKeys(bad func(string, ...any), field string, keys [][]byte) {
	for i, k := range keys {
		if len(k) != ed25519.PublicKeySize {
			bad("%s[%d] has %d bytes, want %d", field, i, len(k), ed25519.PublicKeySize)
		}
		for j := range i {
			if bytes.Equal(keys[j], k) {
				bad("%s[%d] duplicates %s[%d]", field, i, field, j)
			}
		}
	}
}

// KeyDerivationDomain prefixes every seed string hashed by DeriveKey.
const KeyDerivationDomain = "iop-chaincfg-key-v1:"

// DeriveKey derives a deterministic Ed25519 key from a public seed string:
// the private key is ed25519.NewKeyFromSeed(SHA-256(KeyDerivationDomain +
// seed)). Keys derived this way are known to everyone who reads this
// documentation; they are for tests, the test network and the devnet only.
func DeriveKey(seed string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte(KeyDerivationDomain + seed))
	return ed25519.NewKeyFromSeed(s[:])
}

// DevnetMinerCount is the number of devnet miner keys licensed in the devnet
// genesis (DevNet().InitialLicences).
const DevnetMinerCount = 4

// DevnetMinerKey returns the key of devnet miner i: DeriveKey("devnet-miner-"
// + decimal i). Miners 0 .. DevnetMinerCount-1 hold licences from genesis;
// higher indexes give unlicensed keys for tests.
func DevnetMinerKey(i int) ed25519.PrivateKey {
	return DeriveKey(fmt.Sprintf("devnet-miner-%d", i))
}

// AdminKeyCount is the number of admin keys of every network.
const AdminKeyCount = 2

// DevnetAdminKey returns devnet admin key i (0 <= i < AdminKeyCount):
// DeriveKey("devnet-admin-" + decimal i).
func DevnetAdminKey(i int) ed25519.PrivateKey {
	return DeriveKey(fmt.Sprintf("devnet-admin-%d", i))
}

// TestnetAdminKey returns test-network admin key i (0 <= i < AdminKeyCount):
// DeriveKey("testnet-admin-" + decimal i). Anyone can derive these: the test
// network's licences are not meant to protect anything.
func TestnetAdminKey(i int) ed25519.PrivateKey {
	return DeriveKey(fmt.Sprintf("testnet-admin-%d", i))
}

// mainnetPlaceholderAdminKey returns 32 bytes used as mainnet admin public
// key i until the real keys are chosen: SHA-256("iop mainnet placeholder
// admin key " + decimal i). Being a hash output, nobody knows a matching
// private key, so no mainnet admin transaction can be signed.
func mainnetPlaceholderAdminKey(i int) []byte {
	h := sha256.Sum256(fmt.Appendf(nil, "iop mainnet placeholder admin key %d", i))
	return h[:]
}

func publicKey(k ed25519.PrivateKey) []byte {
	return []byte(k.Public().(ed25519.PublicKey))
}

// limit returns 2^n - 1.
func limit(n uint) *big.Int {
	one := big.NewInt(1)
	return new(big.Int).Sub(new(big.Int).Lsh(one, n), one)
}

// MainNet returns a fresh copy of the main network's parameters.
//
// PoW is bitcoin's: limit 2^224-1 (0x1d00ffff), 10-minute spacing, 2016-block
// retarget. Licences activate at height 110 as on the 2017 chain, with the
// cap (factor 3) in force from then on. Contribution contracts follow the
// 2017 chain: 1000-token deposit, at most 1 token per block for all
// executing contracts and 0.1 token per contract, NO votes ×5, at most
// 120,960 blocks (~2.3 years) of execution, starting 1000 blocks after
// approval. The admin keys are placeholders.
func MainNet() *Params {
	const spacing = 10 * time.Minute
	p := &Params{
		Name:          "main",
		Magic:         [4]byte{0x49, 0x6f, 0x50, 0x4d}, // "IoPM"
		AddressPrefix: "iop",
		Genesis: Genesis{
			Version:         1,
			Timestamp:       1793491200, // 2026-11-01 00:00:00 UTC
			Bits:            0x1d00ffff,
			CoinbaseMessage: "IoP token chain main 2026-11-01",
		},

		PowLimit:         limit(224),
		PowLimitBits:     0x1d00ffff,
		TargetSpacing:    spacing,
		TargetTimespan:   2016 * spacing,
		RetargetInterval: 2016,
		MaxTimeOffset:    2 * time.Hour,
		MedianTimeBlocks: 11,

		CoinbaseMaturity: 100,
		BaseSubsidy:      49 * Units,
		HalvingInterval:  210_000,

		AdminKeys:               [][]byte{mainnetPlaceholderAdminKey(0), mainnetPlaceholderAdminKey(1)},
		PlaceholderAdminKeys:    true,
		LicenceActivationHeight: 110,
		CapWindow:               2016,
		DefaultCapFactor:        3,
		CapEnabled:              true,

		CCDepositMin:           1000 * Units,
		CCRewardCeiling:        1 * Units,
		CCMaxRewardPerContract: Units / 10,
		CCActivationDelay:      1000,
		CCVotingPeriod:         2016,
		CCMaxDuration:          120_960,
		CCNoVoteWeight:         5,
	}
	return p
}

// TestNet returns a fresh copy of the test network's parameters: the main
// network's rules with a 256x easier PoW limit (2^232-1, 0x1e00ffff, about
// 2^24 hashes per block, a few CPU-seconds), admin keys from TestnetAdminKey,
// and a shorter contribution-contract voting period (144 blocks) and
// activation delay (10 blocks, as on the 2017 test network).
func TestNet() *Params {
	p := MainNet()
	p.Name = "test"
	p.Magic = [4]byte{0x49, 0x6f, 0x50, 0x54} // "IoPT"
	p.AddressPrefix = "tiop"
	p.Genesis.Bits = 0x1e00ffff
	p.Genesis.CoinbaseMessage = "IoP token chain test 2026-11-01"
	p.PowLimit = limit(232)
	p.PowLimitBits = 0x1e00ffff
	p.AdminKeys = [][]byte{publicKey(TestnetAdminKey(0)), publicKey(TestnetAdminKey(1))}
	p.PlaceholderAdminKeys = false
	p.CCVotingPeriod = 144
	p.CCActivationDelay = 10
	return p
}

// DevNet returns a fresh copy of the developer network's parameters, built
// for laptops and tests:
//
//   - Fixed difficulty (NoRetarget) at limit 2^240-1 (0x1f00ffff): 2^16
//     expected SHA-256d hashes, about 15 ms on one core at 4 MH/s, far below
//     the 2 s spacing.
//   - Coinbase maturity 10.
//   - 100x the main reward with a 100x shorter halving interval (2,100
//     blocks): the same 21M total, and halvings reachable in tests.
//   - Licences from height 1 for DevnetMinerKey(0..DevnetMinerCount-1);
//     admin keys from DevnetAdminKey. The cap window is 120 blocks and the
//     cap starts disabled, so a single devnet miner is never capped unless a
//     test enables the cap with an admin transaction.
//   - Contribution contracts: 10-token deposit, ceiling 100 tokens per
//     block, 10 per contract, 20-block voting, 10-block activation delay,
//     at most 1000 blocks of execution.
func DevNet() *Params {
	const spacing = 2 * time.Second
	miners := make([][]byte, DevnetMinerCount)
	for i := range miners {
		miners[i] = publicKey(DevnetMinerKey(i))
	}
	return &Params{
		Name:          "devnet",
		Magic:         [4]byte{0x49, 0x6f, 0x50, 0x44}, // "IoPD"
		AddressPrefix: "diop",
		Genesis: Genesis{
			Version:         1,
			Timestamp:       1767225600, // 2026-01-01 00:00:00 UTC
			Bits:            0x1f00ffff,
			CoinbaseMessage: "IoP token chain devnet",
		},

		PowLimit:         limit(240),
		PowLimitBits:     0x1f00ffff,
		TargetSpacing:    spacing,
		TargetTimespan:   2016 * spacing,
		RetargetInterval: 2016,
		NoRetarget:       true,
		MaxTimeOffset:    2 * time.Hour,
		MedianTimeBlocks: 11,

		CoinbaseMaturity: 10,
		BaseSubsidy:      4900 * Units,
		HalvingInterval:  2100,

		AdminKeys:               [][]byte{publicKey(DevnetAdminKey(0)), publicKey(DevnetAdminKey(1))},
		LicenceActivationHeight: 1,
		InitialLicences:         miners,
		CapWindow:               120,
		DefaultCapFactor:        3,
		CapEnabled:              false,

		CCDepositMin:           10 * Units,
		CCRewardCeiling:        100 * Units,
		CCMaxRewardPerContract: 10 * Units,
		CCActivationDelay:      10,
		CCVotingPeriod:         20,
		CCMaxDuration:          1000,
		CCNoVoteWeight:         5,
	}
}

// ByName returns fresh parameters of the network called name ("main",
// "test" or "devnet").
func ByName(name string) (*Params, error) {
	switch name {
	case "main":
		return MainNet(), nil
	case "test":
		return TestNet(), nil
	case "devnet":
		return DevNet(), nil
	}
	return nil, fmt.Errorf("chaincfg: unknown network %q (want main, test or devnet)", name)
}
