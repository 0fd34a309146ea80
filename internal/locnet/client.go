package locnet

import (
	"context"
	"fmt"
	"slices"

	"github.com/iop-go/iop/graph"
	"github.com/iop-go/iop/identity"
	"github.com/iop-go/iop/internal/locnet/locpb"
)

// ClosestFrom finds the count nodes closest to loc for a caller that is not
// a node of the network (the CLI, an app): it asks start, then walks to the
// closest nodes found, asking the closest not yet asked among the first
// three, for at most maxHops requests. Every node info is verified.
func ClosestFrom(ctx context.Context, tr Transport, start Contact, loc graph.Location, count, maxHops int) ([]NodeInfo, error) {
	if err := graph.CheckLocation(loc); err != nil || !loc.IsSet() {
		return nil, fmt.Errorf("locnet: closest: location %v is not valid", loc)
	}
	count = min(max(count, 1), MaxListNodes)
	var best []*NodeInfo
	asked := map[identity.ID]bool{}
	ask := func(c Contact) error {
		resp, err := tr.Call(ctx, c, closestRequest(loc, count))
		if err != nil {
			return err
		}
		if resp.Status != locpb.Status_OK {
			return fmt.Errorf("locnet: closest: %s: %s", resp.Status, resp.Details)
		}
		for _, s := range resp.GetNodeList().GetNodes() {
			info, err := OpenNodeInfo(s)
			if err != nil {
				return fmt.Errorf("locnet: closest: a node info from %s does not verify: %w", c, err)
			}
			if !slices.ContainsFunc(best, func(b *NodeInfo) bool { return b.ID == info.ID }) {
				best = append(best, info)
			}
		}
		slices.SortStableFunc(best, func(a, b *NodeInfo) int {
			da, db := graph.Distance(loc, a.Location), graph.Distance(loc, b.Location)
			switch {
			case da < db:
				return -1
			case da > db:
				return 1
			}
			return 0
		})
		if len(best) > count {
			best = best[:count]
		}
		return nil
	}
	if err := ask(start); err != nil {
		return nil, err
	}
	if !start.ID.IsZero() {
		asked[start.ID] = true
	}
	for hops := 1; hops < maxHops && ctx.Err() == nil; hops++ {
		var next *NodeInfo
		for _, b := range best[:min(len(best), exploreBeam)] {
			if !asked[b.ID] {
				next = b
				break
			}
		}
		if next == nil {
			break
		}
		asked[next.ID] = true
		if err := ask(next.Contact()); err != nil {
			best = slices.DeleteFunc(best, func(b *NodeInfo) bool { return b == next })
		}
	}
	out := make([]NodeInfo, len(best))
	for i, b := range best {
		out[i] = *b
	}
	return out, ctx.Err()
}
