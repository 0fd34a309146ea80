package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/iop-go/iop/internal/wire/wirepb"
)

func TestFrameRoundTrip(t *testing.T) {
	m := &wirepb.Message{Id: 7, Kind: &wirepb.Message_Request{Request: &wirepb.Request{
		Body: &wirepb.Request_Ping{Ping: &wirepb.PingRequest{Payload: []byte("hi")}}}}}
	var buf bytes.Buffer
	if err := WriteMessage(&buf, m); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMessage(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, m) {
		t.Errorf("ReadMessage = %v, want %v", got, m)
	}
	if _, err := ReadMessage(&buf); err != io.EOF {
		t.Errorf("ReadMessage on empty stream = %v, want io.EOF", err)
	}
}

func TestReadFrameErrors(t *testing.T) {
	big := make([]byte, 4)
	binary.BigEndian.PutUint32(big, MaxFrame)
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"oversized", big, ErrFrameTooLarge},
		{"short header", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"short body", []byte{0, 0, 0, 5, 1}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadFrame(bytes.NewReader(tt.in))
			if !errors.Is(err, tt.want) {
				t.Errorf("ReadFrame(%x) = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
}

func TestDecodeMessageErrors(t *testing.T) {
	empty, _ := proto.Marshal(&wirepb.Message{Id: 1})
	noBody, _ := proto.Marshal(&wirepb.Message{Id: 1, Kind: &wirepb.Message_Request{Request: &wirepb.Request{}}})
	for name, in := range map[string][]byte{
		"garbage": {0xff, 0xff, 0xff},
		"no kind": empty,
		"no body": noBody,
	} {
		if _, err := DecodeMessage(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeMessage(%s) = %v, want ErrMalformed", name, err)
		}
	}
}

func TestStatusErrorIs(t *testing.T) {
	err := error(Invalid("profile.name"))
	if !errors.Is(err, &StatusError{Status: wirepb.Status_INVALID_VALUE}) {
		t.Error("errors.Is by status failed")
	}
	if errors.Is(err, &StatusError{Status: wirepb.Status_INVALID_VALUE, Details: "profile.type"}) {
		t.Error("errors.Is matched other details")
	}
	if got := err.Error(); got != "invalid value: profile.name" {
		t.Errorf("Error() = %q", got)
	}
}

func FuzzReadMessage(f *testing.F) {
	var buf bytes.Buffer
	_ = WriteMessage(&buf, &wirepb.Message{Id: 1, Kind: &wirepb.Message_Response{Response: &wirepb.Response{Details: "x"}}})
	f.Add(buf.Bytes())
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ReadMessage(bytes.NewReader(in))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteMessage(&out, m); err != nil {
			t.Fatalf("re-encode of a decoded message failed: %v", err)
		}
	})
}
