package apikey_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"github.com/keygate/keygate/apikey"
)

func BenchmarkGenerate(b *testing.B) {
	f := newFormat(b, apikey.DefaultPrefix)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Generate(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	s := generate(b, apikey.DefaultPrefix, 1).Reveal()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := apikey.Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseBadChecksum(b *testing.B) {
	s := flip(generate(b, apikey.DefaultPrefix, 1).Reveal(), 10)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := apikey.Parse(s); err == nil {
			b.Fatal("Parse accepted a bad checksum")
		}
	}
}

func BenchmarkHash(b *testing.B) {
	h := newHasher(b, apikey.Pepper{ID: "p", Key: testKey(1)})
	tok := generate(b, apikey.DefaultPrefix, 1)
	b.ReportAllocs()
	for b.Loop() {
		h.Hash(tok)
	}
}

func BenchmarkHashParallel(b *testing.B) {
	h := newHasher(b, apikey.Pepper{ID: "p", Key: testKey(1)})
	tok := generate(b, apikey.DefaultPrefix, 1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.Hash(tok)
		}
	})
}

// BenchmarkHashBaselineHMACNew is the naive HMAC that BenchmarkHash improves on.
func BenchmarkHashBaselineHMACNew(b *testing.B) {
	key := testKey(1)
	s := generate(b, apikey.DefaultPrefix, 1).Reveal()
	b.ReportAllocs()
	for b.Loop() {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(s))
		m.Sum(nil)
	}
}

func BenchmarkHashSHA256(b *testing.B) {
	h := apikey.NewSHA256Hasher()
	tok := generate(b, apikey.DefaultPrefix, 1)
	b.ReportAllocs()
	for b.Loop() {
		h.Hash(tok)
	}
}
