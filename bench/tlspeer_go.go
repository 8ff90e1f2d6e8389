// SPDX-License-Identifier: MIT
// Go's crypto/tls in bench_tls: k goroutines share n connections, the same
// CA file and server name as tlspeer_raw.
//
//	tlspeer_go MODE PORT N K CAFILE LABEL    (MODE: hs | resume | bulk)
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) != 7 {
		fmt.Fprintln(os.Stderr, "usage: tlspeer_go hs|resume|bulk PORT N K CAFILE LABEL")
		os.Exit(64)
	}
	mode, port, label := os.Args[1], os.Args[2], os.Args[6]
	n, _ := strconv.Atoi(os.Args[3])
	k, _ := strconv.Atoi(os.Args[4])
	pem, err := os.ReadFile(os.Args[5])
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if mode == "resume" {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(16)
	}
	addr := "127.0.0.1:" + port
	one := func(req string) int64 {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer c.Close()
		if _, err := io.WriteString(c, req); err != nil {
			os.Exit(1)
		}
		got, err := io.Copy(io.Discard, c)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return got
	}
	t0 := time.Now()
	if mode == "bulk" {
		got := one(fmt.Sprintf("bulk %d\n", n))
		fmt.Printf("{\"contender\":\"go\",\"workload\":\"%s\",\"bulk_mb_s\":%.1f}\n", label,
			float64(got)/1e6/time.Since(t0).Seconds())
		return
	}
	var left int64 = int64(n)
	var wg sync.WaitGroup
	for i := 0; i < k; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for atomic.AddInt64(&left, -1) >= 0 {
				one("ping\n")
			}
		}()
	}
	wg.Wait()
	fmt.Printf("{\"contender\":\"go\",\"workload\":\"%s\",\"handshakes_per_s\":%.1f}\n", label,
		float64(n)/time.Since(t0).Seconds())
}
