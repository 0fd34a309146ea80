// Package chaincfg defines the consensus parameters of the IoP token chain's
// networks: "main", "test" and "devnet". Parameters are plain values; the
// package depends on no block or transaction types, so every other chain
// package can import it.
//
// # Networks
//
// MainNet, TestNet and DevNet return fresh copies (callers may modify them
// freely, e.g. to shorten a test); ByName looks one up by its Name. Validate
// checks a Params for internal consistency and should be called once when a
// node starts with custom parameters.
//
// # Amounts and supply
//
// Amounts are in units; one token is Units = 10^8 units and the supply is
// capped at MaxSupply = 21,000,000 tokens. A block at height h may create at
// most MaxIssuance(h) = Subsidy(h) + CCCeiling(h) new units: the miner's
// subsidy plus the contribution-contract (CC) ceiling, the most that
// executing contribution contracts may be paid in that block's coinbase.
//
// The schedule is bitcoin's with the 50-token block reward split in two:
//
//   - The genesis block (height 0) issues nothing.
//   - Every block h >= 1 is in era e = h / HalvingInterval.
//   - Subsidy(h) = BaseSubsidy >> e and CCCeiling(h) = CCRewardCeiling >> e
//     (both halve every HalvingInterval blocks, rounding down to whole units).
//
// On main and test BaseSubsidy is 49 tokens, CCRewardCeiling 1 token (the
// 2017 chain's per-block CC limit) and HalvingInterval 210,000 blocks
// (about four years at ten minutes), so at most 50 tokens are created per
// block in era 0. The total over all heights (TotalMaxIssuance, checked
// height by height in the tests) is 2,099,994,996,220,000 units =
// 20,999,949.9622 tokens, 99.99976% of MaxSupply; the last issuing height is
// 6,929,999 (era 32) and issuance is zero from era 33 on. Of that total the
// miner subsidy is at most 20,579,950.9874 tokens; the rest is issued only
// if contribution contracts execute at the full ceiling. The devnet uses a
// 100x larger reward with a 100x shorter HalvingInterval (2,100 blocks, 70
// minutes at 2 s), issuing at most 20,994,999.9995 tokens, so halvings can
// be exercised in tests.
//
// There is no premine. The 2017 chain premined 10% (2.1M tokens) in block 1
// to fund its foundation; here development is funded on chain through
// contribution contracts, voted by token holders, and the mainnet admin keys
// are placeholders, so a premine would have no accountable owner at launch.
// A premine can be added later only by lowering BaseSubsidy so that
// TotalMaxIssuance plus the premine stays within MaxSupply (Validate
// enforces the bound).
//
// # Licensed mining
//
// From LicenceActivationHeight on, a block must be mined (its coinbase
// signed) by a key holding a mining licence. Licences are granted and
// revoked by transactions signed with one of AdminKeys; InitialLicences are
// in force from genesis. The per-miner cap limits each licence to
// CapFactor × CapWindow / (number of licences) blocks in any rolling window of
// CapWindow blocks; it starts with DefaultCapFactor and is enabled, disabled
// or re-factored by admin transactions.
//
// Test and devnet keys are derived from public seed strings by DeriveKey so
// that tests, tools and the devnet can sign; they protect nothing. The
// mainnet admin keys are placeholders (see PlaceholderAdminKeys) and must be
// replaced before launch.
package chaincfg
