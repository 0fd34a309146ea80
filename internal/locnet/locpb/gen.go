// Package locpb holds the protobuf messages of the location based network
// protocol (/iop/loc/1), generated from loc.proto. Run `go generate` here
// after editing it (needs protoc and protoc-gen-go).
package locpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative loc.proto
