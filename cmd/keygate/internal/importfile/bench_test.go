package importfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

// benchFile returns a file of n rows in format f.
func benchFile(f Format, n int) []byte {
	var b bytes.Buffer
	if f == CSV {
		b.WriteString("name,owner,workspace,scopes,expiry,rate,metadata,token\n")
	}
	for i := range n {
		if f == CSV {
			fmt.Fprintf(&b, "key-%d,alice,tiger,billing:read cluster:read,90d,100/1m,team=pay;tier=gold,sk_live_%024d\n", i, i)
		} else {
			fmt.Fprintf(&b, `{"name":"key-%d","owner":"alice","workspace":"tiger","scopes":["billing:read","cluster:read"],"expiry":"90d",`+
				`"limits":{"rate":{"requests":100,"window":"1m"}},"metadata":{"team":"pay","tier":"gold"},"token":"sk_live_%024d"}`+"\n", i, i)
		}
	}
	return b.Bytes()
}

// BenchmarkReader reads 10,000 rows of each format.
func BenchmarkReader(b *testing.B) {
	for _, f := range []Format{CSV, JSONLines} {
		data := benchFile(f, 10000)
		b.Run(string(f), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				r, err := NewReader(bytes.NewReader(data), f)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					_, err := r.Next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n != 10000 {
					b.Fatalf("%d rows", n)
				}
			}
		})
	}
}
