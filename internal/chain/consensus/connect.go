package consensus

import (
	"bytes"
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"sync"

	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/chain/chaincfg"
	"github.com/iop-go/iop/internal/chain/types"
)

// CheckBlockSanity applies the context-free rules to b: proof of work on
// its own, the structure of the block and of every transaction, payloads
// that decode, and the Merkle commitment. A block failing here says
// nothing about its header's hash (the same header may come with a valid
// body), so callers must not remember it as invalid.
func CheckBlockSanity(p *chaincfg.Params, e Engine, b *types.Block) error {
	if err := e.CheckProof(p, &b.Header); err != nil {
		return err
	}
	if len(b.Txs) == 0 {
		return ruleErr(ErrNoTransactions, "block has no transactions")
	}
	if len(b.Txs) > types.MaxBlockTxs {
		return ruleErr(ErrTooManyTxs, "%d transactions exceed %d", len(b.Txs), types.MaxBlockTxs)
	}
	size := types.HeaderSize
	for i, tx := range b.Txs {
		if tx == nil {
			return ruleErr(ErrBadTx, "transaction %d is nil", i)
		}
		n := tx.Size()
		if n > types.MaxTxSize {
			return ruleErr(ErrBadTx, "transaction %d: %d bytes exceed %d", i, n, types.MaxTxSize)
		}
		size += n
	}
	if size > types.MaxBlockSize {
		return ruleErr(ErrBlockTooBig, "block of %d bytes exceeds %d", size, types.MaxBlockSize)
	}
	if !b.Txs[0].IsCoinbase() {
		return ruleErr(ErrFirstTxNotCoinbase, "first transaction is not a coinbase")
	}
	for i, tx := range b.Txs {
		if i > 0 && tx.IsCoinbase() {
			return ruleErr(ErrMultipleCoinbases, "transaction %d is a second coinbase", i)
		}
		if err := checkTxSanity(p, tx); err != nil {
			return fmt.Errorf("transaction %d: %w", i, err)
		}
	}
	ids := b.TxIDs()
	root, mutated := types.MerkleRoot(ids)
	if mutated {
		return ruleErr(ErrMutatedMerkle, "transaction list has a duplicated Merkle leaf")
	}
	if root != b.Header.Merkle {
		return ruleErr(ErrBadMerkleRoot, "merkle root %s, header says %s", root, b.Header.Merkle)
	}
	seen := make(map[types.Hash]struct{}, len(ids))
	for i, id := range ids {
		if _, ok := seen[id]; ok {
			return ruleErr(ErrDuplicateTx, "transaction %d duplicates %s", i, id)
		}
		seen[id] = struct{}{}
	}
	return nil
}

// checkTxSanity applies the context-free transaction rules (State.CheckTx,
// which the mempool calls, applies them too).
func checkTxSanity(p *chaincfg.Params, tx *types.Tx) error {
	if tx.IsCoinbase() {
		if len(tx.Inputs) > 0 {
			return ruleErr(ErrBadTx, "coinbase has inputs")
		}
		if len(tx.Coinbase.Extra) > types.MaxCoinbaseEx {
			return ruleErr(ErrBadTx, "coinbase extra of %d bytes", len(tx.Coinbase.Extra))
		}
		if len(tx.Payload) > 0 {
			return ruleErr(ErrBadCoinbasePayload, "coinbase carries a payload")
		}
	} else {
		if len(tx.Inputs) == 0 {
			return ruleErr(ErrBadTx, "no inputs")
		}
		if len(tx.Outputs) == 0 {
			return ruleErr(ErrBadTx, "no outputs")
		}
	}
	if len(tx.Inputs) > types.MaxTxInputs || len(tx.Outputs) > types.MaxTxOutputs {
		return ruleErr(ErrBadTx, "%d inputs, %d outputs exceed the limits", len(tx.Inputs), len(tx.Outputs))
	}
	if len(tx.Payload) > types.MaxPayload {
		return ruleErr(ErrBadPayload, "payload of %d bytes", len(tx.Payload))
	}
	if tx.LockTime < 0 {
		return ruleErr(ErrBadTx, "negative lock time")
	}
	var total uint64
	for k, o := range tx.Outputs {
		if o.Value == 0 || o.Value > chaincfg.MaxSupply {
			return ruleErr(ErrBadTxOutValue, "output %d value %d not in 1..%d", k, o.Value, uint64(chaincfg.MaxSupply))
		}
		total += o.Value
		if total > chaincfg.MaxSupply {
			return ruleErr(ErrBadTxOutValue, "outputs sum above %d", uint64(chaincfg.MaxSupply))
		}
	}
	if len(tx.Inputs) > 1 {
		seen := make(map[types.OutPoint]struct{}, len(tx.Inputs))
		for _, in := range tx.Inputs {
			if _, ok := seen[in.Prev]; ok {
				return ruleErr(ErrDuplicateInput, "spends %s twice", in.Prev)
			}
			seen[in.Prev] = struct{}{}
		}
	}
	if _, err := DecodePayload(tx.Payload); err != nil {
		return ruleErr(ErrBadPayload, "%v", err)
	}
	return nil
}

// sigJob is one signature to verify.
type sigJob struct {
	pub    []byte
	domain identity.Domain
	msg    []byte
	sig    []byte
	tx, in int // position, for the error (in -1: the coinbase's miner signature)
}

// verifySigs verifies jobs on workers goroutines and reports the failure
// with the lowest position, so the error does not depend on scheduling.
func verifySigs(jobs []sigJob, workers int) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, (len(jobs)+15)/16)
	bad := -1
	if workers <= 1 {
		for i := range jobs {
			if identity.Verify(jobs[i].pub, jobs[i].domain, jobs[i].msg, jobs[i].sig) != nil {
				bad = i
				break
			}
		}
	} else {
		var wg sync.WaitGroup
		fails := make([]int, workers)
		chunk := (len(jobs) + workers - 1) / workers
		for w := range workers {
			fails[w] = -1
			lo, hi := w*chunk, min((w+1)*chunk, len(jobs))
			wg.Go(func() {
				for i := lo; i < hi; i++ {
					if identity.Verify(jobs[i].pub, jobs[i].domain, jobs[i].msg, jobs[i].sig) != nil {
						fails[w] = i
						return
					}
				}
			})
		}
		wg.Wait()
		for _, f := range fails {
			if f >= 0 {
				bad = f
				break
			}
		}
	}
	if bad < 0 {
		return nil
	}
	j := jobs[bad]
	if j.in < 0 {
		return ruleErr(ErrBadCoinbaseSig, "coinbase miner signature does not verify")
	}
	return ruleErr(ErrBadSignature, "transaction %d input %d: signature does not verify", j.tx, j.in)
}

func isAdmin(p *chaincfg.Params, key [32]byte) bool {
	for _, k := range p.AdminKeys {
		if bytes.Equal(k, key[:]) {
			return true
		}
	}
	return false
}

// ConnectGenesis applies the genesis block without checks: its coinbase
// outputs, the initial licences and the default cap factor.
func (s *State) ConnectGenesis(b *types.Block) (*Undo, error) {
	if s.height != -1 {
		return nil, fmt.Errorf("genesis on a state at height %d", s.height)
	}
	u := &Undo{}
	s.j = u
	defer func() { s.j = nil }()
	for _, k := range s.p.InitialLicences {
		if len(k) != 32 {
			return nil, fmt.Errorf("initial licence key of %d bytes", len(k))
		}
		s.setLicence([32]byte(types.AddressOf(k)), true)
	}
	if s.p.CapEnabled {
		s.setCapFactor(uint8(min(max(s.p.DefaultCapFactor, 1), 255)))
	}
	var minted uint64
	for _, tx := range b.Txs {
		id := tx.ID()
		for k, o := range tx.Outputs {
			s.addCoin(types.OutPoint{Tx: id, Index: uint32(k)}, Coin{Value: o.Value, Address: o.Address, Coinbase: tx.IsCoinbase()})
			minted += o.Value
		}
	}
	s.setIssued(minted)
	if cb := b.Txs[0].Coinbase; cb != nil {
		s.recordMiner(0, [32]byte(types.AddressOf(cb.Miner[:])))
	}
	s.setTip(0, b.Hash())
	return u, nil
}

// Connect validates b on top of the state with all contextual rules
// (producer, coinbase, contract payments, spends, signatures, payloads)
// and applies it. b must have passed CheckBlockSanity and its header the
// engine's CheckHeader and CheckTime. On error the state is unchanged. The
// returned undo record restores the state exactly (Disconnect).
func (s *State) Connect(e Engine, b *types.Block) (u *Undo, err error) {
	p := s.p
	if s.j != nil {
		return nil, fmt.Errorf("nested connect")
	}
	if b.Header.Prev != s.tip {
		return nil, fmt.Errorf("block's parent %s is not the state's tip %s", b.Header.Prev, s.tip)
	}
	height := s.height + 1
	if err := e.CheckProducer(p, b, s); err != nil {
		return nil, err
	}
	cbTx := b.Txs[0]
	cb := cbTx.Coinbase
	if cb.Height != height {
		return nil, ruleErr(ErrBadCoinbaseHeight, "coinbase height %d in block %d", cb.Height, height)
	}
	if cb.Prev != b.Header.Prev {
		return nil, ruleErr(ErrBadCoinbasePrev, "coinbase prev %s, header prev %s", cb.Prev, b.Header.Prev)
	}

	journal := &Undo{Changes: make([]Change, 0, 8+3*len(b.Txs))}
	s.j = journal
	defer func() {
		s.j = nil
		if err != nil {
			if rerr := s.rollback(journal); rerr != nil {
				panic(fmt.Sprintf("consensus: rollback failed: %v", rerr))
			}
			u = nil
		}
	}()

	payments, paid := s.schedule(height)

	jobs := make([]sigJob, 0, len(b.Txs))
	jobs = append(jobs, sigJob{pub: cb.Miner[:], domain: types.DomainCoinbase, msg: cbTx.SigHash(p.Magic), sig: cb.Sig[:], tx: 0, in: -1})
	var fees uint64
	for i := 1; i < len(b.Txs); i++ {
		fee, err := s.applyTx(b.Txs[i], i, height, &jobs)
		if err != nil {
			return nil, err
		}
		fees += fee
	}

	// The coinbase: exactly the contract payments first, then the miner.
	if len(cbTx.Outputs) < len(payments) {
		return nil, ruleErr(ErrBadContractPayments, "coinbase has %d outputs, %d contract payments are due", len(cbTx.Outputs), len(payments))
	}
	for k, want := range payments {
		if cbTx.Outputs[k] != want {
			return nil, ruleErr(ErrBadContractPayments, "coinbase output %d pays %d to %x, want %d to %x",
				k, cbTx.Outputs[k].Value, cbTx.Outputs[k].Address[:8], want.Value, want.Address[:8])
		}
	}
	var minerOut uint64
	for _, o := range cbTx.Outputs[len(payments):] {
		minerOut += o.Value
	}
	mint := min(p.Subsidy(height), chaincfg.MaxSupply-s.issued-paid)
	if minerOut > mint+fees {
		return nil, ruleErr(ErrBadCoinbaseValue, "coinbase pays the miner %d, allowed %d (subsidy %d + fees %d)", minerOut, mint+fees, mint, fees)
	}
	cbID := cbTx.ID()
	for k, o := range cbTx.Outputs {
		op := types.OutPoint{Tx: cbID, Index: uint32(k)}
		if _, ok := s.utxo[op]; ok {
			return nil, ruleErr(ErrOverwriteTx, "coinbase output %s already exists", op)
		}
		s.addCoin(op, Coin{Value: o.Value, Address: o.Address, Height: height, Coinbase: true})
	}
	s.setIssued(s.issued + paid + (minerOut - min(minerOut, fees)))
	s.recordMiner(height, [32]byte(types.AddressOf(cb.Miner[:])))

	if err := verifySigs(jobs, s.SigWorkers); err != nil {
		return nil, err
	}
	s.setTip(height, b.Hash())
	return journal, nil
}

// applyTx checks and applies a non-coinbase transaction at position i and
// returns its fee. Signatures are appended to jobs.
func (s *State) applyTx(tx *types.Tx, i int, height int64, jobs *[]sigJob) (uint64, error) {
	p := s.p
	if tx.LockTime > height {
		return 0, ruleErr(ErrUnfinalizedTx, "transaction %d locked until height %d, block %d", i, tx.LockTime, height)
	}
	id := tx.ID()
	cached := s.Sigs.Has(id)
	var msg []byte
	if !cached {
		msg = tx.SigHash(p.Magic)
	}
	var in uint64
	admin := false
	for k := range tx.Inputs {
		txin := &tx.Inputs[k]
		c, ok := s.utxo[txin.Prev]
		if !ok {
			return 0, ruleErr(ErrMissingTxOut, "transaction %d input %d spends %s, which is not unspent", i, k, txin.Prev)
		}
		if types.AddressOf(txin.PubKey[:]) != c.Address {
			return 0, ruleErr(ErrWrongOwner, "transaction %d input %d: key does not own %s", i, k, txin.Prev)
		}
		if c.Coinbase && height-c.Height < p.CoinbaseMaturity {
			return 0, ruleErr(ErrImmatureSpend, "transaction %d input %d spends coinbase output of height %d at %d (maturity %d)",
				i, k, c.Height, height, p.CoinbaseMaturity)
		}
		in += c.Value
		s.spendCoin(txin.Prev, c)
		s.onSpend(txin.Prev, height)
		admin = admin || isAdmin(p, txin.PubKey)
		if !cached {
			*jobs = append(*jobs, sigJob{pub: txin.PubKey[:], domain: types.DomainTx, msg: msg, sig: txin.Sig[:], tx: i, in: k})
		}
	}
	var out uint64
	for _, o := range tx.Outputs {
		out += o.Value
	}
	if out > in {
		return 0, ruleErr(ErrSpendTooHigh, "transaction %d spends %d, has %d", i, out, in)
	}
	for k, o := range tx.Outputs {
		op := types.OutPoint{Tx: id, Index: uint32(k)}
		if _, ok := s.utxo[op]; ok {
			return 0, ruleErr(ErrOverwriteTx, "transaction %d output %s already exists", i, op)
		}
		s.addCoin(op, Coin{Value: o.Value, Address: o.Address, Height: height})
	}
	if len(tx.Payload) > 0 {
		pl, err := DecodePayload(tx.Payload)
		if err != nil {
			return 0, ruleErr(ErrBadPayload, "transaction %d: %v", i, err)
		}
		if err := s.applyPayload(pl, tx, id, i, height, admin); err != nil {
			return 0, err
		}
	}
	return in - out, nil
}

// onSpend cancels a contract whose deposit is spent and withdraws a vote
// whose coin is spent while its contract is still voting.
func (s *State) onSpend(op types.OutPoint, height int64) {
	if len(s.deposits) > 0 {
		if id, ok := s.deposits[op]; ok {
			if c := s.contracts[id]; c != nil && !c.State.terminal() {
				c = s.contractForWrite(id)
				c.State, c.Ended = CCCancelled, height
			}
			s.setDeposit(op, nil)
		}
	}
	if len(s.votes) > 0 {
		if v, ok := s.votes[op]; ok {
			if c := s.contracts[v.Contract]; c != nil && c.State == CCSubmitted {
				c = s.contractForWrite(v.Contract)
				if v.Yes {
					c.Yes -= v.Weight
				} else {
					c.No -= v.Weight
				}
			}
			s.setVote(op, nil)
		}
	}
}

func (s *State) applyPayload(pl Payload, tx *types.Tx, id types.Hash, i int, height int64, admin bool) error {
	p := s.p
	switch {
	case pl.Admin != nil:
		if !admin {
			return ruleErr(ErrNotAdmin, "transaction %d: admin operation without an input signed by an admin key", i)
		}
		a := pl.Admin
		switch a.Op {
		case AdminAddLicence:
			if s.Licensed(a.Key) {
				return ruleErr(ErrLicenceExists, "transaction %d: %x is already licensed", i, a.Key[:8])
			}
			s.setLicence(a.Key, true)
		case AdminRemoveLicence:
			if !s.Licensed(a.Key) {
				return ruleErr(ErrLicenceMissing, "transaction %d: %x holds no licence", i, a.Key[:8])
			}
			s.setLicence(a.Key, false)
		case AdminEnableCap: // the decoder guarantees a factor of 1..255
			s.setCapFactor(a.Factor)
		case AdminDisableCap:
			s.setCapFactor(0)
		}
	case pl.Proposal != nil:
		pr := pl.Proposal
		maxReward := min(p.CCMaxRewardPerContract, p.CCRewardCeiling)
		if pr.Reward == 0 || pr.Reward > maxReward || pr.Duration == 0 || pr.Duration > uint64(p.CCMaxDuration) {
			return ruleErr(ErrCCBadProposal, "transaction %d: reward %d (1..%d), duration %d (1..%d)", i, pr.Reward, maxReward, pr.Duration, p.CCMaxDuration)
		}
		var sum uint64
		for _, be := range pr.Beneficiaries {
			var carry uint64
			sum, carry = bits.Add64(sum, be.Amount, 0)
			if carry != 0 || be.Amount == 0 {
				return ruleErr(ErrCCBeneficiarySum, "transaction %d: beneficiary amount %d", i, be.Amount)
			}
		}
		if sum != pr.Reward {
			return ruleErr(ErrCCBeneficiarySum, "transaction %d: beneficiaries sum to %d, reward is %d", i, sum, pr.Reward)
		}
		if tx.Outputs[0].Value < p.CCDepositMin {
			return ruleErr(ErrCCDepositTooSmall, "transaction %d: deposit %d below %d", i, tx.Outputs[0].Value, p.CCDepositMin)
		}
		c := &Contract{ID: id, DepositValue: tx.Outputs[0].Value, Reward: pr.Reward, Duration: pr.Duration,
			Beneficiaries: slices.Clone(pr.Beneficiaries), Submitted: height, VotingEnd: height + p.CCVotingPeriod, State: CCSubmitted}
		s.addContract(c)
		s.setDeposit(c.Deposit(), &id)
	case pl.Vote != nil:
		v := pl.Vote
		c := s.contracts[v.Contract]
		if c == nil {
			return ruleErr(ErrCCUnknownContract, "transaction %d: vote for unknown contract %s", i, v.Contract)
		}
		if c.State != CCSubmitted || height <= c.Submitted || height > c.VotingEnd {
			return ruleErr(ErrCCVoteWindow, "transaction %d: vote at height %d outside the voting period %d..%d of %s",
				i, height, c.Submitted+1, c.VotingEnd, v.Contract)
		}
		w := tx.Outputs[0].Value
		c = s.contractForWrite(v.Contract)
		if v.Yes {
			c.Yes += w
		} else {
			c.No += w
		}
		s.setVote(types.OutPoint{Tx: id, Index: 0}, &VoteRecord{Contract: v.Contract, Yes: v.Yes, Weight: w})
	}
	return nil
}

// approved is the vote rule: yes > 0 and yes > NoVoteWeight × no.
func approved(p *chaincfg.Params, c *Contract) bool {
	hi, lo := bits.Mul64(uint64(max(p.CCNoVoteWeight, 0)), c.No)
	return c.Yes > 0 && hi == 0 && c.Yes > lo
}

// schedule runs the contract state machine for the block at height, before
// its transactions, and returns the coinbase payments due (contracts in ID
// order, beneficiaries in proposal order) and their total.
func (s *State) schedule(height int64) ([]types.TxOut, uint64) {
	if len(s.contracts) == 0 {
		return nil, 0
	}
	p := s.p
	var live []types.Hash
	for id, c := range s.contracts {
		if !c.State.terminal() {
			live = append(live, id)
		}
	}
	slices.SortFunc(live, func(a, b types.Hash) int { return bytes.Compare(a[:], b[:]) })
	var executing uint64
	for _, id := range live {
		c := s.contracts[id]
		switch c.State {
		case CCSubmitted:
			if height > c.VotingEnd {
				c = s.contractForWrite(id)
				c.Decided = height
				if approved(p, c) {
					c.State, c.Start = CCApproved, max(c.VotingEnd+p.CCActivationDelay, height)
				} else {
					c.State, c.Ended = CCNotApproved, height
					s.setDeposit(c.Deposit(), nil)
				}
			}
		case CCExecuting:
			if height >= c.Start+int64(c.Duration) {
				c = s.contractForWrite(id)
				c.State, c.Ended = CCExecuted, height
				s.setDeposit(c.Deposit(), nil)
			} else {
				executing += c.Reward
			}
		}
	}
	var ready []*Contract
	for _, id := range live {
		c := s.contracts[id]
		if c.State == CCQueued || (c.State == CCApproved && c.Start <= height) {
			ready = append(ready, c)
		}
	}
	slices.SortFunc(ready, func(a, b *Contract) int {
		if a.Decided != b.Decided {
			return int(a.Decided - b.Decided)
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	ceiling := p.CCCeiling(height)
	blocked := false
	for _, c := range ready {
		if !blocked && executing+c.Reward <= ceiling {
			c = s.contractForWrite(c.ID)
			c.State, c.Start = CCExecuting, height
			executing += c.Reward
			continue
		}
		blocked = true // FIFO: nothing overtakes the head of the queue
		if c.State == CCApproved {
			c = s.contractForWrite(c.ID)
			c.State = CCQueued
		}
	}
	var outs []types.TxOut
	var paid uint64
	for _, id := range live {
		c := s.contracts[id]
		// After a halving the executing set may exceed the ceiling: pay in
		// ID order what fits; the others skip this height.
		if c.State != CCExecuting || paid+c.Reward > ceiling || s.issued+paid+c.Reward > chaincfg.MaxSupply {
			continue
		}
		paid += c.Reward
		for _, be := range c.Beneficiaries {
			outs = append(outs, types.TxOut{Value: be.Amount, Address: be.Address})
		}
	}
	return outs, paid
}

// NextCoinbase returns what the coinbase of the next block must start with
// (the contract payments due) and the most its miner outputs may claim
// besides fees.
func (s *State) NextCoinbase() (payments []types.TxOut, subsidy uint64) {
	if s.j != nil {
		panic("consensus: NextCoinbase during connect")
	}
	u := &Undo{}
	s.j = u
	payments, paid := s.schedule(s.height + 1)
	s.j = nil
	if err := s.rollback(u); err != nil {
		panic(fmt.Sprintf("consensus: rollback failed: %v", err))
	}
	return payments, min(s.p.Subsidy(s.height+1), chaincfg.MaxSupply-s.issued-paid)
}

// CheckTx checks tx as if it were the only transaction of the next block
// (inputs unspent in the state, ownership, maturity, lock time, payload
// rules, signatures) and returns its fee. The state is left unchanged. The
// mempool uses it for transactions spending confirmed outputs.
func (s *State) CheckTx(tx *types.Tx) (fee uint64, err error) {
	if s.j != nil {
		return 0, fmt.Errorf("check during connect")
	}
	if tx.IsCoinbase() {
		return 0, ruleErr(ErrMultipleCoinbases, "a coinbase outside a block")
	}
	if err := checkTxSanity(s.p, tx); err != nil {
		return 0, err
	}
	journal := &Undo{}
	s.j = journal
	defer func() {
		s.j = nil
		if rerr := s.rollback(journal); rerr != nil {
			panic(fmt.Sprintf("consensus: rollback failed: %v", rerr))
		}
	}()
	s.schedule(s.height + 1)
	var jobs []sigJob
	if fee, err = s.applyTx(tx, 1, s.height+1, &jobs); err != nil {
		return 0, err
	}
	if err := verifySigs(jobs, s.SigWorkers); err != nil {
		return 0, err
	}
	return fee, nil
}
