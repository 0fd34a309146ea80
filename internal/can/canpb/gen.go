// Package canpb holds the protobuf records of the content address network,
// generated from can.proto. Run `go generate` here after editing it (needs
// protoc and protoc-gen-go).
package canpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative can.proto
