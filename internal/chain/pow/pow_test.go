package pow

import (
	"encoding/hex"
	"errors"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
)

func hexBig(t testing.TB, s string) *big.Int {
	t.Helper()
	neg := false
	if s[0] == '-' {
		neg, s = true, s[1:]
	}
	n, ok := new(big.Int).SetString(s, 16)
	if !ok {
		t.Fatalf("bad hex %q", s)
	}
	if neg {
		n.Neg(n)
	}
	return n
}

// mainPowLimit is bitcoin mainnet's limit, 2^224-1 (bits 0x1d00ffff).
var mainPowLimit = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 224), big.NewInt(1))

// regtestPowLimit is bitcoin regtest's limit, 2^255-1 (bits 0x207fffff).
var regtestPowLimit = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(1))

// Vectors from Bitcoin Core's arith_uint256_tests (SetCompact/GetCompact) and
// btcd's difficulty_test.go. canon is BigToCompact(CompactToBig(bits)).
var compactVectors = []struct {
	bits  uint32
	value string // hex, optional leading '-'
	canon uint32
}{
	{0x00000000, "0", 0},
	{0x00123456, "0", 0},
	{0x01003456, "0", 0},
	{0x02000056, "0", 0},
	{0x03000000, "0", 0},
	{0x04000000, "0", 0},
	{0x00923456, "0", 0}, // negative zero
	{0x01803456, "0", 0},
	{0x02800056, "0", 0},
	{0x03800000, "0", 0},
	{0x04800000, "0", 0},
	{0x00989680, "0", 0}, // btcd: 10000000 -> 0
	{0x01123456, "12", 0x01120000},
	{0x01fedcba, "-7e", 0x01fe0000},
	{0x02123456, "1234", 0x02123400},
	{0x02008000, "80", 0x02008000},
	{0x03123456, "123456", 0x03123456},
	{0x04123456, "12345600", 0x04123456},
	{0x04923456, "-12345600", 0x04923456},
	{0x05009234, "92340000", 0x05009234},
	{0x20123456, "1234560000000000000000000000000000000000000000000000000000000000", 0x20123456},
	// Bitcoin genesis / mainnet minimum difficulty.
	{0x1d00ffff, "00000000ffff0000000000000000000000000000000000000000000000000000", 0x1d00ffff},
	// Regtest limit.
	{0x207fffff, "7fffff0000000000000000000000000000000000000000000000000000000000", 0x207fffff},
	// Non-canonical: leading zero mantissa bytes shrink the exponent, and a
	// top byte >= 0x80 gets a zero byte in front so it does not read as sign.
	{0x1e0000ff, "ff" + zeros(2*27), 0x1d00ff00},
	// Overflow: exponent far beyond 32 bytes; Core flags this, btcd returns
	// the (huge) value.
	{0xff123456, "123456" + zeros(2*252), 0xff123456},
	{0x21010000, "01" + zeros(2*32), 0x21010000}, // exactly 2^256
}

func zeros(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '0'
	}
	return string(b)
}

func TestCompactToBig(t *testing.T) {
	for _, v := range compactVectors {
		want := hexBig(t, v.value)
		if got := CompactToBig(v.bits); got.Cmp(want) != 0 {
			t.Errorf("CompactToBig(%08x) = %x, want %x", v.bits, got, want)
		}
		if got := BigToCompact(want); got != v.canon {
			t.Errorf("BigToCompact(%x) = %08x, want %08x", want, got, v.canon)
		}
	}
}

func TestBigToCompact(t *testing.T) {
	for _, v := range []struct {
		value string
		bits  uint32
	}{
		{"0", 0},
		{"-1", 0x01810000}, // btcd: -1 -> 25231360
		{"1", 0x01010000},
		{"7f", 0x017f0000},
		{"80", 0x02008000},
		{"ff", 0x0200ff00},
		{"7fffff", 0x037fffff},
		{"800000", 0x04008000},
		{"-800000", 0x04808000},
		{"ffffff", 0x0400ffff},
		// Lossy: only the top three bytes survive.
		{"123456789a", 0x05123456},
		// Bitcoin mainnet limit 2^224-1 encodes as 0x1d00ffff.
		{"ffffffffffffffffffffffffffffffffffffffffffffffffffffffff", 0x1d00ffff},
		// Regtest limit 2^255-1.
		{"7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", 0x207fffff},
		// 2^256-1.
		{"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", 0x2100ffff},
	} {
		if got := BigToCompact(hexBig(t, v.value)); got != v.bits {
			t.Errorf("BigToCompact(%s) = %08x, want %08x", v.value, got, v.bits)
		}
	}
}

// TestBigToCompactRoundTrip checks that values a compact can hold exactly (a
// 23-bit mantissa shifted by whole bytes) survive big -> compact -> big, and that
// the compact is a fixed point.
func TestBigToCompactRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		m := big.NewInt(int64(r.Uint32N(1 << 23)))
		n := m.Lsh(m, 8*uint(r.IntN(30)))
		if r.IntN(4) == 0 {
			n.Neg(n)
		}
		c := BigToCompact(n)
		if back := CompactToBig(c); back.Cmp(n) != 0 {
			t.Fatalf("round trip %x -> %08x -> %x", n, c, back)
		}
		if c2 := BigToCompact(CompactToBig(c)); c2 != c {
			t.Fatalf("compact %08x not a fixed point (got %08x)", c, c2)
		}
	}
}

// refCompactToBig is an independent, deliberately naive reading of the
// format: mantissa * 256^(exponent-3) with truncating division.
func refCompactToBig(bits uint32) *big.Int {
	m := big.NewInt(int64(bits & 0x7fffff))
	e := int64(bits >> 24)
	if e >= 3 {
		m.Mul(m, new(big.Int).Exp(big.NewInt(256), big.NewInt(e-3), nil))
	} else {
		m.Quo(m, new(big.Int).Exp(big.NewInt(256), big.NewInt(3-e), nil))
	}
	if bits&0x800000 != 0 {
		m.Neg(m)
	}
	return m
}

func FuzzCompactRoundTrip(f *testing.F) {
	for _, v := range compactVectors {
		f.Add(v.bits)
	}
	f.Add(uint32(0x1c05a3f4))
	f.Add(uint32(0x00800000))
	f.Fuzz(func(t *testing.T, bits uint32) {
		v := CompactToBig(bits)
		if ref := refCompactToBig(bits); v.Cmp(ref) != 0 {
			t.Fatalf("CompactToBig(%08x) = %x, reference %x", bits, v, ref)
		}
		c := BigToCompact(v)
		if back := CompactToBig(c); back.Cmp(v) != 0 {
			t.Fatalf("value lost: %08x -> %x -> %08x -> %x", bits, v, c, back)
		}
		if c2 := BigToCompact(CompactToBig(c)); c2 != c {
			t.Fatalf("canonical form %08x not a fixed point (got %08x)", c, c2)
		}
		if v.Sign() == 0 && c != 0 {
			t.Fatalf("zero %08x encoded as %08x", bits, c)
		}
		if (v.Sign() < 0) != (c&0x800000 != 0) {
			t.Fatalf("sign of %x lost in %08x", v, c)
		}
	})
}

func TestCalcWork(t *testing.T) {
	for _, v := range []struct {
		bits uint32
		work string // hex
	}{
		{0x1d00ffff, "100010001"}, // bitcoin genesis chainwork
		{0x207fffff, "2"},         // regtest block
		{0x00000000, "0"},
		{0x04923456, "0"}, // negative target
		{0x03000001, "8000000000000000000000000000000000000000000000000000000000000000"},
		{0x2100ffff, "1"}, // target 2^256-2^240: 2^256/(target+1) = 1
		{0x21010000, "0"}, // target 2^256: work 0
		{0xff123456, "0"}, // overflowed target
	} {
		if got := CalcWork(v.bits); got.Cmp(hexBig(t, v.work)) != 0 {
			t.Errorf("CalcWork(%08x) = %x, want %s", v.bits, got, v.work)
		}
	}
}

func TestCalcWorkMonotonic(t *testing.T) {
	// Walk targets from tiny to 2^255 in steps; work must never increase as
	// the target grows, and must strictly decrease across a doubling.
	prevTarget := big.NewInt(0)
	var prevWork *big.Int
	for e := uint32(3); e <= 0x20; e++ {
		for _, m := range []uint32{0x010000, 0x012345, 0x400000, 0x7fffff} {
			bits := e<<24 | m
			target := CompactToBig(bits)
			if target.Cmp(prevTarget) <= 0 {
				continue
			}
			work := CalcWork(bits)
			if prevWork != nil && work.Cmp(prevWork) > 0 {
				t.Fatalf("work rose from %x to %x as target grew to %08x", prevWork, work, bits)
			}
			double := BigToCompact(new(big.Int).Lsh(target, 1))
			if CalcWork(double).Cmp(work) >= 0 {
				t.Fatalf("doubling target %08x -> %08x did not reduce work", bits, double)
			}
			prevTarget, prevWork = target, work
		}
	}
}

// reverse turns a hash as displayed (big-endian hex) into its wire bytes.
func reverse(t testing.TB, display string) [32]byte {
	b, err := hex.DecodeString(display)
	if err != nil || len(b) != 32 {
		t.Fatalf("bad hash %q", display)
	}
	var h [32]byte
	for i := range b {
		h[31-i] = b[i]
	}
	return h
}

const bitcoinGenesis = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"

func TestHashToBig(t *testing.T) {
	h := reverse(t, bitcoinGenesis)
	if got := HashToBig(h); got.Cmp(hexBig(t, bitcoinGenesis)) != 0 {
		t.Fatalf("HashToBig = %x", got)
	}
	var one [32]byte
	one[0] = 1
	if HashToBig(one).Cmp(big.NewInt(1)) != 0 {
		t.Fatal("hash[0] must be the least significant byte")
	}
}

func TestCheckProof(t *testing.T) {
	genesisTarget := CompactToBig(0x1d00ffff)
	atTarget := genesisTarget.FillBytes(make([]byte, 32))
	aboveTarget := new(big.Int).Add(genesisTarget, big.NewInt(1)).FillBytes(make([]byte, 32))
	toHash := func(be []byte) (h [32]byte) {
		for i := range be {
			h[31-i] = be[i]
		}
		return h
	}
	var zero [32]byte
	for _, v := range []struct {
		name  string
		hash  [32]byte
		bits  uint32
		limit *big.Int
		want  error
	}{
		{"bitcoin genesis", reverse(t, bitcoinGenesis), 0x1d00ffff, mainPowLimit, nil},
		{"hash equals target", toHash(atTarget), 0x1d00ffff, mainPowLimit, nil},
		{"hash target+1", toHash(aboveTarget), 0x1d00ffff, mainPowLimit, ErrHashAboveTarget},
		{"zero hash harder target", zero, 0x1b0404cb, mainPowLimit, nil},
		{"genesis hash vs harder target", reverse(t, bitcoinGenesis), 0x1a0404cb, mainPowLimit, ErrHashAboveTarget},
		{"zero target", zero, 0x00000000, mainPowLimit, ErrTargetNotPositive},
		{"negative zero", zero, 0x01803456, mainPowLimit, ErrTargetNotPositive},
		{"negative target", zero, 0x04923456, mainPowLimit, ErrTargetNotPositive},
		{"regtest bits on main", zero, 0x207fffff, mainPowLimit, ErrTargetAboveLimit},
		{"regtest bits on regtest", zero, 0x207fffff, regtestPowLimit, nil},
		{"overflowed compact", zero, 0xff123456, regtestPowLimit, ErrTargetAboveLimit},
		{"2^256", zero, 0x21010000, regtestPowLimit, ErrTargetAboveLimit},
	} {
		err := CheckProof(v.hash, v.bits, v.limit)
		if v.want == nil && err != nil {
			t.Errorf("%s: unexpected error %v", v.name, err)
		}
		if v.want != nil && !errors.Is(err, v.want) {
			t.Errorf("%s: got %v, want %v", v.name, err, v.want)
		}
	}
}

func TestRetarget(t *testing.T) {
	const twoWeeks = 14 * 24 * 60 * 60 // 1209600 s
	for _, v := range []struct {
		name        string
		first, last int64
		prev, want  uint32
		limit       *big.Int
	}{
		// Bitcoin Core pow_tests.cpp.
		{"get_next_work", 1261130161, 1262152739, 0x1d00ffff, 0x1d00d86a, mainPowLimit},
		{"pow limit", 1231006505, 1233061996, 0x1d00ffff, 0x1d00ffff, mainPowLimit},
		{"lower limit actual", 1279008237, 1279297671, 0x1c05a3f4, 0x1c0168fd, mainPowLimit},
		{"upper limit actual", 1263163443, 1269211443, 0x1c387f6f, 0x1d00e1fd, mainPowLimit},
	} {
		if got := Retarget(v.prev, v.last-v.first, twoWeeks, v.limit); got != v.want {
			t.Errorf("%s: Retarget = %08x, want %08x", v.name, got, v.want)
		}
	}

	prev := uint32(0x1c05a3f4)
	old := CompactToBig(prev)
	scaled := func(num, den int64) uint32 {
		n := new(big.Int).Mul(old, big.NewInt(num))
		return BigToCompact(n.Div(n, big.NewInt(den)))
	}
	for _, v := range []struct {
		name   string
		actual int64
		want   uint32
	}{
		{"on time", twoWeeks, prev},
		{"quarter exactly", twoWeeks / 4, scaled(1, 4)},
		{"faster than quarter clamps", 1, scaled(1, 4)},
		{"zero clamps", 0, scaled(1, 4)},
		{"negative clamps", -twoWeeks, scaled(1, 4)},
		{"four times exactly", twoWeeks * 4, scaled(4, 1)},
		{"slower than 4x clamps", twoWeeks * 100, scaled(4, 1)},
		{"half", twoWeeks / 2, scaled(1, 2)},
		{"double", twoWeeks * 2, scaled(2, 1)},
	} {
		if got := Retarget(prev, v.actual, twoWeeks, mainPowLimit); got != v.want {
			t.Errorf("%s: Retarget = %08x, want %08x", v.name, got, v.want)
		}
	}

	// Capped at the limit: an easy target that would exceed it.
	if got := Retarget(0x1d00ffff, twoWeeks*4, twoWeeks, mainPowLimit); got != 0x1d00ffff {
		t.Errorf("capped at limit: got %08x", got)
	}
	if got := Retarget(0x207fffff, twoWeeks*2, twoWeeks, regtestPowLimit); got != 0x207fffff {
		t.Errorf("regtest cap: got %08x", got)
	}
	limitBits := BigToCompact(regtestPowLimit)
	// Well below the limit: 3x is not capped.
	want3 := BigToCompact(new(big.Int).Mul(CompactToBig(0x1f7fffff), big.NewInt(3)))
	if got := Retarget(0x1f7fffff, twoWeeks*3, twoWeeks, regtestPowLimit); got != want3 {
		t.Errorf("below limit: got %08x, want %08x", got, want3)
	}
	// Half the limit times 4 exceeds it: the result is exactly the limit.
	if got := Retarget(0x2040000f, twoWeeks*4, twoWeeks, regtestPowLimit); got != limitBits {
		t.Errorf("over limit: got %08x, want %08x", got, limitBits)
	}

	defer func() {
		if recover() == nil {
			t.Error("Retarget with zero target timespan did not panic")
		}
	}()
	Retarget(prev, twoWeeks, 0, mainPowLimit)
}

func TestMedianTime(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for n := 1; n <= 11; n++ {
		ts := make([]int64, n)
		for i := range ts {
			ts[i] = 1000 + int64(i)*600
		}
		want := ts[n/2]
		r.Shuffle(n, func(i, j int) { ts[i], ts[j] = ts[j], ts[i] })
		in := slices.Clone(ts)
		if got := MedianTime(ts); got != want {
			t.Errorf("n=%d %v: median %d, want %d", n, ts, got, want)
		}
		if !slices.Equal(in, ts) {
			t.Errorf("n=%d: input modified", n)
		}
	}
	for _, v := range []struct {
		ts   []int64
		want int64
	}{
		{nil, 0},
		{[]int64{5}, 5},
		{[]int64{1, 2}, 2},          // even count: upper middle
		{[]int64{4, 3, 2, 1}, 3},    // even count: upper middle
		{[]int64{7, 7, 7, 1, 1}, 7}, // duplicates
		{[]int64{10, -5, 3}, 3},     // negative timestamps sort correctly
		{[]int64{9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 100}, 5},
	} {
		if got := MedianTime(v.ts); got != v.want {
			t.Errorf("MedianTime(%v) = %d, want %d", v.ts, got, v.want)
		}
	}
}

func BenchmarkCheckProof(b *testing.B) {
	h := reverse(b, bitcoinGenesis)
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckProof(h, 0x1d00ffff, mainPowLimit); err != nil {
			b.Fatal(err)
		}
	}
}
