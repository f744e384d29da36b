// SPDX-License-Identifier: MIT

// go_proxy is the Go peer of the proxy benchmarks: a goroutine per direction, each an io.Copy
// between two *net.TCPConn (which splices on Linux), passing end of file on with CloseWrite.
//
//	go_proxy LISTEN_HOST:PORT UPSTREAM_HOST:PORT
//
// It prints "listening on HOST:PORT" (port 0 picks one) and logs nothing per connection.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go_proxy LISTEN_HOST:PORT UPSTREAM_HOST:PORT")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			continue // EMFILE and the like: try again
		}
		go relay(c.(*net.TCPConn), os.Args[2])
	}
}

// relay copies both ways until both directions have ended. An error in either direction closes
// both connections, which ends the other copy too.
func relay(client *net.TCPConn, upstream string) {
	defer client.Close()
	c, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	up := c.(*net.TCPConn)
	defer up.Close()
	done := make(chan struct{})
	go func() {
		pass(up, client)
		close(done)
	}()
	pass(client, up)
	<-done
}

// pass copies src to dst and half-closes dst at end of file.
func pass(dst, src *net.TCPConn) {
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		src.Close()
		return
	}
	dst.CloseWrite()
}
