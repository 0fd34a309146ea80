package graph

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Party names one end of an edge.
type Party uint8

const (
	// PartyIssuer is the issuer of the card: the predecessor node.
	PartyIssuer Party = 0
	// PartyRecipient is the recipient of the card: the successor node.
	PartyRecipient Party = 1
)

// String returns "issuer" or "recipient".
func (p Party) String() string {
	switch p {
	case PartyIssuer:
		return "issuer"
	case PartyRecipient:
		return "recipient"
	}
	return fmt.Sprintf("Party(%d)", uint8(p))
}

// Who says which parties may do something to an edge. Its zero value,
// WhoController, means the party that controls the edge.
type Who uint8

const (
	WhoController Who = iota // the controlling party (TypeRules.Controller)
	WhoIssuer                // the issuer only
	WhoRecipient             // the recipient only
	WhoEither                // either party
	WhoNobody                // neither party
)

// String returns the name of w, such as "either".
func (w Who) String() string {
	switch w {
	case WhoController:
		return "controller"
	case WhoIssuer:
		return "issuer"
	case WhoRecipient:
		return "recipient"
	case WhoEither:
		return "either"
	case WhoNobody:
		return "nobody"
	}
	return fmt.Sprintf("Who(%d)", uint8(w))
}

// TypeRules are the rules of an edge type: who controls an edge, who may
// revoke it and who may change which of its properties. The zero value is
// the default for types without rules of their own: the issuer (the
// predecessor node) controls the edge, only the controller may revoke it or
// change its properties, and the edge exists only once the recipient has
// accepted it.
type TypeRules struct {
	Controller Party
	Revoke     Who
	// Properties gives who may set or remove particular property keys;
	// keys not listed follow OtherProperties.
	Properties      map[string]Who
	OtherProperties Who
	// IssuerOnly marks one-sided types: their edges exist with the issuer's
	// signature alone, and an acceptance is optional.
	IssuerOnly bool
}

// allows reports whether w includes party p.
func (r *TypeRules) allows(w Who, p Party) bool {
	switch w {
	case WhoController:
		return p == r.Controller
	case WhoIssuer:
		return p == PartyIssuer
	case WhoRecipient:
		return p == PartyRecipient
	case WhoEither:
		return p == PartyIssuer || p == PartyRecipient
	}
	return false
}

// MayRevoke reports whether party p may revoke an edge of this type.
func (r TypeRules) MayRevoke(p Party) bool { return r.allows(r.Revoke, p) }

// MayChange reports whether party p may set or remove the property key of an
// edge of this type.
func (r TypeRules) MayChange(p Party, key string) bool {
	w, ok := r.Properties[key]
	if !ok {
		w = r.OtherProperties
	}
	return r.allows(w, p)
}

// builtinRules are the rules of the edge types the protocol defines. They are
// part of the protocol: every verifier must apply the same rules, so they
// are fixed here rather than registered at run time.
var builtinRules = map[string]TypeRules{
	// An employer (issuer) employs the recipient: the employer controls the
	// edge and its properties, except "contact", which the employee keeps
	// up to date; either side may end it.
	"work/employs": {Revoke: WhoEither, Properties: map[string]Who{"contact": WhoRecipient}},
	// An organisation (issuer) has the recipient as a member; the member
	// may leave.
	"org/member": {Revoke: WhoEither},
	// A mutual friendship: either side may end it or change its properties.
	"social/friend": {Revoke: WhoEither, OtherProperties: WhoEither},
	// The issuer follows the recipient. One-sided: it needs no acceptance,
	// and only the issuer may change or revoke it.
	"social/follows": {Revoke: WhoIssuer, OtherProperties: WhoIssuer, IssuerOnly: true},
}

// Rules returns the rules of edge type t: those of the longest built-in type
// that is t or a '/'-separated prefix of t (so "work/employs/intern" follows
// "work/employs"), or the zero TypeRules, the defaults.
func Rules(t string) TypeRules {
	r := rulesOf(t)
	r.Properties = maps.Clone(r.Properties)
	return r
}

// rulesOf is Rules without copying the built-in Properties map, which the
// caller must not modify.
func rulesOf(t string) TypeRules {
	for {
		if r, ok := builtinRules[t]; ok {
			return r
		}
		i := strings.LastIndexByte(t, '/')
		if i < 0 {
			return TypeRules{}
		}
		t = t[:i]
	}
}

// BuiltinTypes lists the edge types with rules of their own, sorted.
func BuiltinTypes() []string {
	return slices.Sorted(maps.Keys(builtinRules))
}
