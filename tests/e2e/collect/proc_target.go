// A Go program for `driftwatch collect --pid/--match` (built without cgo: static, the shim
// cannot enter it). Usage: procgo MODE PERIOD_MS SECONDS
//   sockets: keeps one more TCP connection over loopback every PERIOD_MS (both ends)
//   threads: one more goroutine locked to its OS thread and blocked forever every PERIOD_MS
//   steady:  opens and closes a connection every PERIOD_MS
package main

import (
	"net"
	"os"
	"runtime"
	"strconv"
	"time"
)

var held []net.Conn

func main() {
	if len(os.Args) != 4 {
		os.Stderr.WriteString("usage: procgo sockets|threads|steady PERIOD_MS SECONDS\n")
		os.Exit(2)
	}
	mode := os.Args[1]
	period, _ := strconv.Atoi(os.Args[2])
	seconds, _ := strconv.Atoi(os.Args[3])
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			if mode == "sockets" {
				held = append(held, conn)
			} else {
				conn.Close()
			}
		}
	}()
	block := make(chan struct{})
	deadline := time.Now().Add(time.Duration(seconds) * time.Second)
	for time.Now().Before(deadline) {
		switch mode {
		case "sockets", "steady":
			conn, err := net.Dial("tcp", listener.Addr().String())
			if err != nil {
				panic(err)
			}
			if mode == "sockets" {
				held = append(held, conn)
			} else {
				conn.Close()
			}
		case "threads":
			go func() {
				runtime.LockOSThread()
				<-block
			}()
		}
		time.Sleep(time.Duration(period) * time.Millisecond)
	}
}
