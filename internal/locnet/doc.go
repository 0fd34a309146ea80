// Package locnet is the IoP location based network (LOC). (Documentation
// in progress.)
package locnet
