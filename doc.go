// Package iop is the root of the Internet of People implementation in Go. It
// holds no code of its own, only repository-wide tests (see pkgdoc_test.go);
// the SDK is in package client, identities in package identity, records in
// package graph, and the programs in cmd/iop and cmd/iopd.
package iop
