// Package wirepb holds the protobuf messages of the IoP protocols, generated
// from the .proto files in this directory. Run `go generate` here after
// editing them (needs protoc and protoc-gen-go).
package wirepb

//go:generate protoc --go_out=. --go_opt=paths=source_relative profile.proto
