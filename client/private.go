package client

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/profile/search"
	"github.com/iop-go/iop/internal/vault"
)

// Private edges live only on the device of their issuer (the predecessor
// node's owner): in the identity's vault in the agent's home, encrypted at
// rest with a key derived from the identity's private key, and never sent
// to a server. They are proposed, accepted, asked for and disclosed over a
// device-to-device connection to the other party's agent, on the
// application service RelationService, so servers and relays only ever
// carry ciphertext.
//
// Vault buckets of an identity:
//
//	edges        card ID -> proof   private edges it issued
//	issued       card ID -> card    public cards it proposed (to list them later)
//	out          card ID -> card    private proposals waiting for the recipient
//	in           card ID -> card    private proposals made to it, waiting for its answer
//	disclosed    card ID -> proof   edges other identities showed it
//	disclosedBy  sender/card ID     who showed which (for the per-sender quota)
//	shown        card ID/identity   whom it showed its private edges (revocations follow)
//	policy       rule -> rule       who may read which of its private edges
const (
	bucketEdges       = "edges"
	bucketIssued      = "issued"
	bucketOut         = "out"
	bucketIn          = "in"
	bucketDisclosed   = "disclosed"
	bucketDisclosedBy = "disclosedBy"
	bucketShown       = "shown"
	bucketPolicy      = "policy"
)

// RelationService is the application service agents answer private-graph
// requests on.
const RelationService = "iop-rel"

// Limits of the private graph.
const (
	maxPrivateInbox   = 100      // private proposals waiting for one identity
	maxInboxPerIssuer = 5        // of them from one issuer
	maxDisclosed      = 10000    // disclosed edges one identity keeps
	maxDisclosedBy    = 200      // of them shown by one sender
	maxDisclosedProof = 16 << 10 // bytes of one disclosed proof
	maxDisclosedBytes = 16 << 20 // bytes of all disclosed proofs
	maxPrivateEdges   = 10000    // private edges one identity issues
	maxRelFrame       = 4 << 20  // bytes of one request or answer on RelationService
	maxAskTypes       = 16
	maxDisclose       = 256 // proofs in one disclosure
	maxPolicyRules    = 1000
)

// PrivateGraph is one identity's private graph store.
type PrivateGraph struct {
	key  *identity.Key
	path string
}

// OpenPrivateGraph returns the private graph store of key's identity in
// home. The vault file is opened for each operation, so the agent and CLI
// commands of the same home may use it at once.
func OpenPrivateGraph(home string, key *identity.Key) *PrivateGraph {
	return &PrivateGraph{key: key, path: filepath.Join(home, "agent", key.ID().String()+".vault")}
}

// vaultWait is how long an operation waits for another process (the agent,
// or another command of the same home) to finish with the vault.
const vaultWait = 10 * time.Second

// with runs fn on the opened vault. A vault in use by another process is
// waited for, briefly: every use holds it for one operation only.
func (p *PrivateGraph) with(fn func(v *vault.Vault) error) error {
	if err := os.MkdirAll(filepath.Dir(p.path), 0o700); err != nil {
		return err
	}
	v, err := vault.OpenWait(p.path, p.key.Seed(), vaultWait)
	if err != nil {
		return err
	}
	defer v.Close()
	return fn(v)
}

// storedCard is a signed card as the vault keeps it.
type storedCard struct {
	Raw       []byte `json:"raw"`
	Signature []byte `json:"sig"`
}

func encodeCard(sc *graph.SignedCard) []byte {
	b, _ := json.Marshal(storedCard{Raw: sc.Raw, Signature: sc.Signature})
	return b
}

func decodeCard(b []byte) (*graph.SignedCard, error) {
	var s storedCard
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return graph.OpenCard(s.Raw, s.Signature, nil)
}

// update runs fn on the opened vault's content; its changes are written
// at once when fn returns nil.
func (p *PrivateGraph) update(fn func(tx *vault.Tx) error) error {
	return p.with(func(v *vault.Vault) error { return v.Update(fn) })
}

// values copies the values of a bucket out of the vault.
func (p *PrivateGraph) values(bucket string) (map[string][]byte, error) {
	var all map[string][]byte
	err := p.with(func(v *vault.Vault) error {
		var err error
		all, err = v.List(bucket)
		return err
	})
	return all, err
}

// cards returns the cards of a bucket, verified; an entry that no longer
// opens fails the whole call, naming it.
func (p *PrivateGraph) cards(bucket string) ([]*graph.SignedCard, error) {
	all, err := p.values(bucket)
	if err != nil {
		return nil, err
	}
	var out []*graph.SignedCard
	for k, val := range all {
		sc, err := decodeCard(val)
		if err != nil {
			return nil, fmt.Errorf("vault %s: %s/%s: %w", p.path, bucket, k, err)
		}
		out = append(out, sc)
	}
	return out, nil
}

// proofs returns the edges of a bucket, verified at now (after the vault
// is closed again); an entry that no longer opens fails the whole call.
func (p *PrivateGraph) proofs(bucket string, now time.Time) ([]*graph.EdgeState, error) {
	all, err := p.values(bucket)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(all))
	raw := make([][]byte, 0, len(all))
	for k, val := range all {
		keys = append(keys, k)
		raw = append(raw, val)
	}
	states, errs := graph.VerifyProofs(raw, now, 0)
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("vault %s: %s/%s: %w", p.path, bucket, keys[i], err)
		}
	}
	return states, nil
}

// putLimited stores key in bucket unless the bucket already holds limit
// other entries.
func putLimited(tx *vault.Tx, bucket, key string, value []byte, limit int, what string) error {
	if _, ok := tx.Get(bucket, key); !ok && tx.Len(bucket) >= limit {
		return fmt.Errorf("%s: %d already, the limit", what, limit)
	}
	return tx.Put(bucket, key, value)
}

// Edges returns the private edges the identity issued, verified at now.
func (p *PrivateGraph) Edges(now time.Time) ([]*graph.EdgeState, error) {
	return p.proofs(bucketEdges, now)
}

// Disclosed returns the edges others disclosed to the identity, verified
// at now.
func (p *PrivateGraph) Disclosed(now time.Time) ([]*graph.EdgeState, error) {
	return p.proofs(bucketDisclosed, now)
}

// Issued returns the public cards the identity proposed.
func (p *PrivateGraph) Issued() ([]*graph.SignedCard, error) { return p.cards(bucketIssued) }

// Outgoing returns the private proposals waiting for their recipients.
func (p *PrivateGraph) Outgoing() ([]*graph.SignedCard, error) { return p.cards(bucketOut) }

// Incoming returns the private proposals waiting for the identity's answer.
func (p *PrivateGraph) Incoming() ([]*graph.SignedCard, error) { return p.cards(bucketIn) }

// RememberIssued records a public card the identity proposed.
func (p *PrivateGraph) RememberIssued(sc *graph.SignedCard) error {
	return p.update(func(tx *vault.Tx) error {
		return putLimited(tx, bucketIssued, sc.ID().String(), encodeCard(sc), maxPrivateEdges, "public cards remembered")
	})
}

// DropIncoming forgets a private proposal made to the identity.
func (p *PrivateGraph) DropIncoming(id graph.CardID) error {
	return p.update(func(tx *vault.Tx) error {
		tx.Delete(bucketIn, id.String())
		return nil
	})
}

// EdgeProof returns the encoded proof of a private edge the identity
// issued, by card ID.
func (p *PrivateGraph) EdgeProof(id graph.CardID) ([]byte, error) {
	var out []byte
	err := p.with(func(v *vault.Vault) error {
		b, ok, err := v.Get(bucketEdges, id.String())
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("no private edge %s in this identity's store (see `iop rel list`)", id)
		}
		out = b
		return nil
	})
	return out, err
}

// Revoke signs the identity's revocation of its private edge id (the
// type's rules must let the issuer revoke) and keeps the revoked state:
// later answers to requests and disclosures carry the revocation, and it
// replaces the copies others kept.
func (p *PrivateGraph) Revoke(id graph.CardID) error {
	return p.update(func(tx *vault.Tx) error {
		b, ok := tx.Get(bucketEdges, id.String())
		if !ok {
			return fmt.Errorf("no private edge %s in this identity's store", id)
		}
		st, err := graph.OpenProof(b, time.Now())
		if err != nil {
			return err
		}
		if st.Revoked {
			return fmt.Errorf("edge %s is already revoked", id)
		}
		rec, err := graph.SignRevocation(p.key, st.Edge.Card, st.Sequence+1, time.Time{})
		if err != nil {
			return err
		}
		if err := st.Apply(rec); err != nil {
			return err
		}
		nb, err := graph.EncodeProof(st.Proof())
		if err != nil {
			return err
		}
		return tx.Put(bucketEdges, id.String(), nb)
	})
}

// MarkShown remembers that the identity's private edges ids were shown to
// another identity.
func (p *PrivateGraph) MarkShown(to identity.ID, ids ...graph.CardID) error {
	if len(ids) == 0 {
		return nil
	}
	return p.update(func(tx *vault.Tx) error {
		for _, id := range ids {
			if err := putLimited(tx, bucketShown, id.String()+"/"+to.String(), nil, maxDisclosed, "edges shown"); err != nil {
				return err
			}
		}
		return nil
	})
}

// ShownTo returns the identities the private edge id was shown to.
func (p *PrivateGraph) ShownTo(id graph.CardID) ([]identity.ID, error) {
	all, err := p.values(bucketShown)
	if err != nil {
		return nil, err
	}
	var out []identity.ID
	for k := range all {
		card, to, ok := strings.Cut(k, "/")
		if !ok || card != id.String() {
			continue
		}
		tid, err := identity.ParseID(to)
		if err != nil {
			return nil, fmt.Errorf("vault %s: shown/%s: %w", p.path, k, err)
		}
		out = append(out, tid)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// addDisclosed keeps edges (already verified) shown to the identity by
// sender: a card already kept is replaced only by a copy with more records
// (a revocation, a change), and each sender may fill only its share.
func (p *PrivateGraph) addDisclosed(sender identity.ID, states []*graph.EdgeState) error {
	type item struct {
		id    string
		proof []byte
		seq   uint64
	}
	var items []item
	for _, st := range states {
		b, err := graph.EncodeProof(st.Proof())
		if err != nil {
			return err
		}
		if len(b) > maxDisclosedProof {
			return fmt.Errorf("edge %s: proof of %d bytes, at most %d are kept", st.Edge.ID(), len(b), maxDisclosedProof)
		}
		items = append(items, item{st.Edge.ID().String(), b, st.Sequence})
	}
	return p.update(func(tx *vault.Tx) error {
		prefix := sender.String() + "/"
		by, total := 0, 0
		tx.Range(bucketDisclosedBy, func(k string, _ []byte) bool {
			if strings.HasPrefix(k, prefix) {
				by++
			}
			return true
		})
		tx.Range(bucketDisclosed, func(_ string, v []byte) bool {
			total += len(v)
			return true
		})
		for _, it := range items {
			if old, ok := tx.Get(bucketDisclosed, it.id); ok {
				if st, err := graph.OpenProof(old, time.Now()); err == nil && st.Sequence >= it.seq {
					continue // what is kept is as new
				}
			} else {
				switch {
				case tx.Len(bucketDisclosed) >= maxDisclosed:
					return fmt.Errorf("disclosed edges: %d kept already, the limit", maxDisclosed)
				case by >= maxDisclosedBy:
					return fmt.Errorf("disclosed edges: %s showed %d already, the limit per sender", sender.Short(), maxDisclosedBy)
				case total+len(it.proof) > maxDisclosedBytes:
					return fmt.Errorf("disclosed edges: %d bytes kept already, the limit", total)
				}
				by++
			}
			total += len(it.proof)
			if err := tx.Put(bucketDisclosed, it.id, it.proof); err != nil {
				return err
			}
			if err := tx.Put(bucketDisclosedBy, prefix+it.id, nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// PolicyRule lets a requester (or anyone, Requester "*") read the private
// edges of types matching Type (a wildcard such as "work/*"; "" or "*" for
// all) without asking the owner.
type PolicyRule struct {
	Requester string `json:"requester"`
	Type      string `json:"type"`
}

func (r PolicyRule) key() string { return r.Requester + " " + r.Type }

// Validate checks a rule.
func (r PolicyRule) Validate() error {
	if r.Requester != "*" {
		if _, err := identity.ParseID(r.Requester); err != nil {
			return fmt.Errorf("requester: want an identity ID or *: %w", err)
		}
	}
	if _, err := search.ParseWildcard(r.Type); err != nil {
		return fmt.Errorf("type: %w", err)
	}
	return nil
}

// Allow adds a rule to the identity's disclosure allow-list.
func (p *PrivateGraph) Allow(r PolicyRule) error {
	if err := r.Validate(); err != nil {
		return err
	}
	b, _ := json.Marshal(r)
	return p.update(func(tx *vault.Tx) error {
		return putLimited(tx, bucketPolicy, r.key(), b, maxPolicyRules, "policy rules")
	})
}

// Disallow removes a rule from the allow-list.
func (p *PrivateGraph) Disallow(r PolicyRule) error {
	return p.update(func(tx *vault.Tx) error {
		if _, ok := tx.Get(bucketPolicy, r.key()); !ok {
			return fmt.Errorf("no rule lets %s read %q", r.Requester, r.Type)
		}
		tx.Delete(bucketPolicy, r.key())
		return nil
	})
}

// Policy returns the allow-list.
func (p *PrivateGraph) Policy() ([]PolicyRule, error) {
	all, err := p.values(bucketPolicy)
	if err != nil {
		return nil, err
	}
	var out []PolicyRule
	for k, val := range all {
		var r PolicyRule
		if err := json.Unmarshal(val, &r); err != nil {
			return nil, fmt.Errorf("vault %s: policy rule %q: %w", p.path, k, err)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out, nil
}

// allowed reports whether the allow-list lets requester read edges of type t.
func allowed(rules []PolicyRule, requester identity.ID, t string) bool {
	for _, r := range rules {
		if r.Requester != "*" && r.Requester != requester.String() {
			continue
		}
		w, err := search.ParseWildcard(r.Type)
		if err == nil && w.Match(t) {
			return true
		}
	}
	return false
}

// relRequest is a request on RelationService.
type relRequest struct {
	Op         string   `json:"op"` // propose, accept, ask, disclose
	Card       []byte   `json:"card,omitempty"`
	CardSig    []byte   `json:"card_sig,omitempty"`
	Acceptance []byte   `json:"acceptance,omitempty"`
	AccSig     []byte   `json:"acceptance_sig,omitempty"`
	Types      []string `json:"types,omitempty"`
	Proofs     [][]byte `json:"proofs,omitempty"`
}

// relResponse answers a relRequest.
type relResponse struct {
	Status string   `json:"status"` // ok, pending, granted, refused
	Error  string   `json:"error,omitempty"`
	Proofs [][]byte `json:"proofs,omitempty"`
	// Truncated says that more proofs matched than fit in one answer.
	Truncated bool `json:"truncated,omitempty"`
}

// Answers on RelationService.
const (
	relOK      = "ok"
	relPending = "pending"
	relGranted = "granted"
	relRefused = "refused"
)

// ErrRefused reports a private-graph request the other party refused.
var ErrRefused = errors.New("refused")

func writeFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > maxRelFrame {
		return fmt.Errorf("message of %d bytes, limit %d", len(b), maxRelFrame)
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	if _, err := w.Write(append(hdr[:], b...)); err != nil {
		return err
	}
	return nil
}

func readFrame(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxRelFrame {
		return fmt.Errorf("message of %d bytes, limit %d", n, maxRelFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
