package client

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzRelFrame feeds arbitrary bytes to the decoder of private-graph
// requests and answers (what another identity's device sends): it must
// fail cleanly, never allocate past the frame limit, and what it accepts
// must encode again.
func FuzzRelFrame(f *testing.F) {
	var buf bytes.Buffer
	writeFrame(&buf, &relRequest{Op: "ask", Types: []string{"work/*"}})
	f.Add(buf.Bytes())
	buf.Reset()
	writeFrame(&buf, &relResponse{Status: relGranted, Proofs: [][]byte{{1, 2, 3}}})
	f.Add(buf.Bytes())
	f.Add(binary.BigEndian.AppendUint32(nil, maxRelFrame+1))
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		var req relRequest
		if readFrame(bytes.NewReader(b), &req) == nil {
			var out bytes.Buffer
			if err := writeFrame(&out, &req); err != nil {
				t.Fatalf("a decoded request does not encode: %v", err)
			}
		}
		var resp relResponse
		readFrame(bytes.NewReader(b), &resp)
	})
}
