package graph

import (
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// The edge records are encoded in the protobuf wire format, written and read
// field by field so that exactly one encoding of each value is accepted:
// fields in ascending field-number order, each at most once (repeated fields
// consecutively), proto3 zero values omitted, minimal varints and length
// prefixes, no unknown fields and no trailing bytes. This is the encoding
// proto.MarshalOptions{Deterministic: true} produces for the messages
// described in the comments of the encoders, so any protobuf library can
// read the records, but only the canonical form verifies.

// maxMillis is the latest time an edge record may carry:
// 9999-12-31T23:59:59.999Z, in milliseconds since the Unix epoch.
const maxMillis = 253402300799999

// fieldSpec describes one field of a message for decodeFields.
type fieldSpec struct {
	name     string // camelCase, as in FieldError.Field
	typ      protowire.Type
	repeated bool
}

// decodeFields walks the fields of the canonical message b, whose fields are
// numbered 1..len(specs), and calls fn with each varint value v or bytes
// value s. record names the message in errors about b as a whole.
func decodeFields(b []byte, record string, specs []fieldSpec, fn func(num int, v uint64, s []byte) error) error {
	last := 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fieldErr(record, "malformed field tag: %v", protowire.ParseError(n))
		}
		if n != protowire.SizeTag(num) {
			return fieldErr(record, "non-minimal field tag")
		}
		if num < 1 || int(num) > len(specs) {
			return fieldErr(record, "unknown field %d", num)
		}
		sp := specs[num-1]
		if typ != sp.typ {
			return fieldErr(sp.name, "wire type %d, want %d", typ, sp.typ)
		}
		if int(num) < last || (int(num) == last && !sp.repeated) {
			return fieldErr(sp.name, "field out of order or repeated")
		}
		last = int(num)
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return fieldErr(sp.name, "malformed varint: %v", protowire.ParseError(m))
			}
			if m != protowire.SizeVarint(v) {
				return fieldErr(sp.name, "non-minimal varint")
			}
			if v == 0 {
				return fieldErr(sp.name, "zero value encoded; it must be omitted")
			}
			if err := fn(int(num), v, nil); err != nil {
				return err
			}
			b = b[m:]
		case protowire.BytesType:
			s, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return fieldErr(sp.name, "malformed length-delimited value: %v", protowire.ParseError(m))
			}
			if m != protowire.SizeBytes(len(s)) {
				return fieldErr(sp.name, "non-minimal length prefix")
			}
			if len(s) == 0 && !sp.repeated {
				return fieldErr(sp.name, "empty value encoded; it must be omitted")
			}
			if err := fn(int(num), 0, s); err != nil {
				return err
			}
			b = b[m:]
		default:
			return fieldErr(sp.name, "unsupported wire type %d", typ)
		}
	}
	return nil
}

// appendBytesField appends field num with value s, unless s is empty.
func appendBytesField(b []byte, num protowire.Number, s []byte) []byte {
	if len(s) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, s)
}

// appendStringField appends field num with value s, unless s is empty.
func appendStringField(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendVarintField appends field num with value v, unless v is zero.
func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// millis converts t to milliseconds since the epoch, or reports that it is
// outside [min, maxMillis].
func millis(field string, t time.Time, min int64) (int64, error) {
	if t.Before(time.UnixMilli(min)) || t.After(time.UnixMilli(maxMillis)) {
		return 0, fieldErr(field, "%s is outside %s..%s", t.UTC().Format(time.RFC3339Nano),
			time.UnixMilli(min).UTC().Format(time.RFC3339), time.UnixMilli(maxMillis).UTC().Format(time.RFC3339Nano))
	}
	return t.UnixMilli(), nil
}

// timeValue decodes a time field: milliseconds since the epoch, at most
// maxMillis.
func timeValue(field string, v uint64) (time.Time, error) {
	if v > maxMillis {
		return time.Time{}, fieldErr(field, "%d ms is after year 9999", v)
	}
	return time.UnixMilli(int64(v)), nil
}

// Limits of edge properties.
const (
	MaxProperties       = 16  // properties of one edge, and keys set or removed by one change
	MaxPropertyKeyLen   = 32  // bytes
	MaxPropertyValueLen = 256 // bytes
)

// validatePropertyKey checks a property key: 1 to MaxPropertyKeyLen bytes of
// ASCII letters, digits, '-', '_' and '.'.
func validatePropertyKey(k string) error {
	if k == "" {
		return fmt.Errorf("empty key")
	}
	if len(k) > MaxPropertyKeyLen {
		return fmt.Errorf("key %.40q is %d bytes, limit %d", k, len(k), MaxPropertyKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if !isNameByte(k[i]) {
			return fmt.Errorf("key %q: byte 0x%02x at offset %d is not a letter, digit, '-', '_' or '.'", k, k[i], i)
		}
	}
	return nil
}

// validateProperties checks a property map against the limits.
func validateProperties(field string, props map[string]string) error {
	if len(props) > MaxProperties {
		return fieldErr(field, "%d properties, limit %d", len(props), MaxProperties)
	}
	for k, v := range props {
		if err := validatePropertyKey(k); err != nil {
			return fieldErr(field, "%v", err)
		}
		if len(v) > MaxPropertyValueLen {
			return fieldErr(field, "value of %q is %d bytes, limit %d", k, len(v), MaxPropertyValueLen)
		}
		if !utf8.ValidString(v) {
			return fieldErr(field, "value of %q is not valid UTF-8", k)
		}
	}
	return nil
}

// isNameByte reports whether c may appear in a property key or an edge type
// segment.
func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
}

// propertySpecs are the fields of message Property { string key = 1;
// string value = 2; }.
var propertySpecs = []fieldSpec{
	{name: "key", typ: protowire.BytesType},
	{name: "value", typ: protowire.BytesType},
}

// appendProperties appends props as repeated Property messages in field num,
// in ascending key order.
func appendProperties(b []byte, num protowire.Number, props map[string]string) []byte {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := props[k]
		size := protowire.SizeTag(1) + protowire.SizeBytes(len(k))
		if v != "" {
			size += protowire.SizeTag(2) + protowire.SizeBytes(len(v))
		}
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(size))
		b = appendStringField(b, 1, k)
		b = appendStringField(b, 2, v)
	}
	return b
}

// decodeProperty decodes one Property message of the list field, whose
// previous key was prev; keys must strictly ascend.
func decodeProperty(field string, s []byte, props map[string]string, prev string) (string, error) {
	var k, v string
	var hasKey bool
	err := decodeFields(s, field, propertySpecs, func(num int, _ uint64, s []byte) error {
		if num == 1 {
			k, hasKey = string(s), true
		} else {
			v = string(s)
		}
		return nil
	})
	if err != nil {
		return "", fieldErr(field, "%v", err)
	}
	if !hasKey {
		return "", fieldErr(field, "property without a key")
	}
	if len(props) > 0 && k <= prev {
		return "", fieldErr(field, "key %q is not after %q: keys must be unique and ascending", k, prev)
	}
	if len(props) >= MaxProperties {
		return "", fieldErr(field, "more than %d properties", MaxProperties)
	}
	props[k] = v
	return k, nil
}
