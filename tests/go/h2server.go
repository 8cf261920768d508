// Go's net/http over TLS, for tether's HTTP/2 tests: net/http speaks HTTP/2 on TLS by itself
// (ALPN h2), as most Go services do. "/" answers "hello\n". A second, plain listener answers
// "/stats" with what only the server sees: TLS connections accepted, and requests served over
// each protocol. It prints its TLS address, then the stats one, when ready.
//
// Usage: h2server CERT.pem KEY.pem
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
)

func listen() net.Listener {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return listener
}

func main() {
	var accepted, h2, http1 int64
	tlsListener, statsListener := listen(), listen()
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 {
			atomic.AddInt64(&h2, 1)
		} else {
			atomic.AddInt64(&http1, 1)
		}
		fmt.Fprint(w, "hello\n")
	})
	server := &http.Server{
		Handler: hello,
		ConnState: func(_ net.Conn, state http.ConnState) {
			if state == http.StateNew {
				atomic.AddInt64(&accepted, 1)
			}
		},
	}
	stats := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"accepted": %d, "h2": %d, "http1": %d}`,
			atomic.LoadInt64(&accepted), atomic.LoadInt64(&h2), atomic.LoadInt64(&http1))
	})
	go http.Serve(statsListener, stats)
	fmt.Println(tlsListener.Addr().String())
	fmt.Println(statsListener.Addr().String())
	if err := server.ServeTLS(tlsListener, os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
