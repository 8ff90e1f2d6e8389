// SPDX-License-Identifier: MIT
// Go contender: net.Dialer.DialContext, K goroutines in flight, each
// connection closed as soon as it is established.
//
//	peer_go [-d delay_ms] [-t max_seconds] HOST PORT N K WORKLOAD
//
// -d sets Dialer.FallbackDelay (Go's Happy Eyeballs attempt delay; default
// 300 ms).  Standard library only, so it builds offline (GOPROXY=off).
// Prints one JSON result line, like the C peers (bench/bench_common.h).
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func main() {
	delay := flag.Int("d", -1, "Happy Eyeballs fallback delay in ms")
	maxSecs := flag.Int("t", 60, "wall-clock bound in seconds")
	flag.Parse()
	if flag.NArg() != 5 {
		fmt.Fprintln(os.Stderr, "usage: peer_go [-d ms] [-t s] HOST PORT N K WORKLOAD")
		os.Exit(2)
	}
	host, port, workload := flag.Arg(0), flag.Arg(1), flag.Arg(4)
	n, err1 := strconv.ParseInt(flag.Arg(2), 10, 64)
	k, err2 := strconv.ParseInt(flag.Arg(3), 10, 64)
	if err1 != nil || err2 != nil || n < 1 || k < 1 {
		fmt.Fprintln(os.Stderr, "peer_go: N and K must be integers >= 1")
		os.Exit(2)
	}
	if k > n {
		k = n
	}
	dialer := &net.Dialer{}
	if *delay >= 0 {
		dialer.FallbackDelay = time.Duration(*delay) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(*maxSecs)*time.Second)
	defer cancel()
	target := net.JoinHostPort(host, port)

	var started, done int64
	var failed atomic.Value
	var wg sync.WaitGroup
	cpu0, t0 := cpuSeconds(), time.Now()
	for i := int64(0); i < k; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for atomic.AddInt64(&started, 1) <= n {
				c, err := dialer.DialContext(ctx, "tcp", target)
				if err != nil {
					failed.Store(err.Error())
					cancel()
					return
				}
				c.Close()
				atomic.AddInt64(&done, 1)
			}
		}()
	}
	wg.Wait()
	wall, cpu := time.Since(t0).Seconds(), cpuSeconds()-cpu0
	if msg, ok := failed.Load().(string); ok {
		fmt.Fprintf(os.Stderr, "go: %s (after %d connects)\n", msg, done)
		os.Exit(1)
	}
	metric := fmt.Sprintf(`"connects_per_s":%.1f`, float64(n)/wall)
	if strings.HasPrefix(workload, "he") {
		metric = fmt.Sprintf(`"time_to_connect_ms":%.3f`, wall*1e3/float64(n))
	}
	fmt.Printf("{\"contender\":\"go\",\"workload\":%q,\"n\":%d,\"k\":%d,%s,\"cpu_us_per_connect\":%.2f}\n",
		workload, n, k, metric, cpu*1e6/float64(n))
}
