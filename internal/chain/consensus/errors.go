package consensus

import (
	"errors"
	"fmt"
)

// ErrorCode names the consensus rule a block or transaction broke. Codes
// are stable: a peer, the mempool and the tests tell failures apart by them.
type ErrorCode int

// The rules. Each RuleError carries exactly one of these.
const (
	// Block structure (context-free).
	ErrNoTransactions     ErrorCode = iota + 1 // a block without transactions
	ErrBlockTooBig                             // encoded block over types.MaxBlockSize
	ErrTooManyTxs                              // more than types.MaxBlockTxs transactions
	ErrFirstTxNotCoinbase                      // the first transaction is not a coinbase
	ErrMultipleCoinbases                       // a coinbase after the first transaction
	ErrBadMerkleRoot                           // header Merkle root does not match the transactions
	ErrMutatedMerkle                           // duplicate-leaf Merkle malleation (CVE-2012-2459)
	ErrDuplicateTx                             // two transactions with the same ID in one block
	ErrBadTx                                   // malformed transaction (no inputs/outputs, coinbase with inputs, bad version)
	ErrDuplicateInput                          // a transaction spends the same output twice
	ErrBadTxOutValue                           // an output value of zero, or output sum overflows or exceeds MaxIssuance
	ErrBadPayload                              // payload that does not decode (unknown kind, non-canonical)

	// Header and proof of work.
	ErrHighHash             // hash above the target claimed by bits
	ErrBadBits              // target not positive or above the proof-of-work limit
	ErrUnexpectedDifficulty // bits differ from the engine's NextBits
	ErrTimeTooOld           // timestamp not after the median of the last MedianTimeBlocks
	ErrTimeTooNew           // timestamp beyond now + MaxTimeOffset
	ErrInvalidAncestor      // the block descends from an invalid block
	ErrDuplicateBlock       // the block is already known

	// Coinbase.
	ErrBadCoinbaseHeight   // coinbase height is not the block's height
	ErrBadCoinbasePrev     // coinbase prev is not the header's prev
	ErrBadCoinbaseSig      // the miner's coinbase signature does not verify
	ErrBadCoinbaseValue    // miner outputs above subsidy + fees (or above MaxIssuance)
	ErrBadContractPayments // the coinbase does not start with exactly the contract payments due
	ErrBadCoinbasePayload  // a coinbase carries a payload

	// Transactions against the UTXO set.
	ErrMissingTxOut  // input spends an output that does not exist or is spent
	ErrWrongOwner    // input's public key does not own the spent output
	ErrBadSignature  // input signature does not verify
	ErrImmatureSpend // coinbase output spent before CoinbaseMaturity
	ErrSpendTooHigh  // outputs exceed inputs
	ErrUnfinalizedTx // LockTime above the block's height
	ErrOverwriteTx   // a transaction creates an output that already exists

	// Licences and cap (engine LicensedPoW).
	ErrUnlicensedMiner // the coinbase miner holds no licence
	ErrMinerCapped     // the miner reached the cap in the rolling window
	ErrNotAdmin        // admin payload without an input signed by an admin key
	ErrLicenceExists   // add of an already licensed key
	ErrLicenceMissing  // remove of a key that holds no licence

	// Contribution contracts.
	ErrCCBadProposal     // reward/duration out of bounds, no beneficiaries
	ErrCCBeneficiarySum  // beneficiaries' amounts do not sum to the reward
	ErrCCDepositTooSmall // output 0 below CCDepositMin (or missing)
	ErrCCUnknownContract // vote for a contract that does not exist
	ErrCCVoteWindow      // vote outside the contract's voting period

	// Time-warp defence (retargeting networks).
	ErrTimeWarp // a period's first block too far before its parent, or its last block before its first
)

var codeNames = map[ErrorCode]string{
	ErrNoTransactions:       "ErrNoTransactions",
	ErrBlockTooBig:          "ErrBlockTooBig",
	ErrTooManyTxs:           "ErrTooManyTxs",
	ErrFirstTxNotCoinbase:   "ErrFirstTxNotCoinbase",
	ErrMultipleCoinbases:    "ErrMultipleCoinbases",
	ErrBadMerkleRoot:        "ErrBadMerkleRoot",
	ErrMutatedMerkle:        "ErrMutatedMerkle",
	ErrDuplicateTx:          "ErrDuplicateTx",
	ErrBadTx:                "ErrBadTx",
	ErrDuplicateInput:       "ErrDuplicateInput",
	ErrBadTxOutValue:        "ErrBadTxOutValue",
	ErrBadPayload:           "ErrBadPayload",
	ErrHighHash:             "ErrHighHash",
	ErrBadBits:              "ErrBadBits",
	ErrUnexpectedDifficulty: "ErrUnexpectedDifficulty",
	ErrTimeTooOld:           "ErrTimeTooOld",
	ErrTimeTooNew:           "ErrTimeTooNew",
	ErrInvalidAncestor:      "ErrInvalidAncestor",
	ErrDuplicateBlock:       "ErrDuplicateBlock",
	ErrBadCoinbaseHeight:    "ErrBadCoinbaseHeight",
	ErrBadCoinbasePrev:      "ErrBadCoinbasePrev",
	ErrBadCoinbaseSig:       "ErrBadCoinbaseSig",
	ErrBadCoinbaseValue:     "ErrBadCoinbaseValue",
	ErrBadContractPayments:  "ErrBadContractPayments",
	ErrBadCoinbasePayload:   "ErrBadCoinbasePayload",
	ErrMissingTxOut:         "ErrMissingTxOut",
	ErrWrongOwner:           "ErrWrongOwner",
	ErrBadSignature:         "ErrBadSignature",
	ErrImmatureSpend:        "ErrImmatureSpend",
	ErrSpendTooHigh:         "ErrSpendTooHigh",
	ErrUnfinalizedTx:        "ErrUnfinalizedTx",
	ErrOverwriteTx:          "ErrOverwriteTx",
	ErrUnlicensedMiner:      "ErrUnlicensedMiner",
	ErrMinerCapped:          "ErrMinerCapped",
	ErrNotAdmin:             "ErrNotAdmin",
	ErrLicenceExists:        "ErrLicenceExists",
	ErrLicenceMissing:       "ErrLicenceMissing",
	ErrCCBadProposal:        "ErrCCBadProposal",
	ErrCCBeneficiarySum:     "ErrCCBeneficiarySum",
	ErrCCDepositTooSmall:    "ErrCCDepositTooSmall",
	ErrCCUnknownContract:    "ErrCCUnknownContract",
	ErrCCVoteWindow:         "ErrCCVoteWindow",
	ErrTimeWarp:             "ErrTimeWarp",
}

func (c ErrorCode) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("ErrorCode(%d)", int(c))
}

// RuleError reports a broken consensus rule.
type RuleError struct {
	Code   ErrorCode
	Reason string
}

func (e *RuleError) Error() string { return e.Code.String() + ": " + e.Reason }

// ruleErr builds a RuleError.
func ruleErr(c ErrorCode, format string, args ...any) *RuleError {
	return &RuleError{Code: c, Reason: fmt.Sprintf(format, args...)}
}

// CodeOf returns the rule code of err, or 0 if err is not a RuleError.
func CodeOf(err error) ErrorCode {
	var re *RuleError
	if errors.As(err, &re) {
		return re.Code
	}
	return 0
}
