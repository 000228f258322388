// etcd's own lock recipe (clientv3/concurrency.Mutex), driven as clusterlock_bench_peer drives ours, so that the
// benchmark driver measures both the same way. Built by scripts/bench.sh from Debian's golang-etcd-server-dev:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o go_recipe benchmarks/go_recipe/main.go
//
// Every line it prints carries CLOCK_MONOTONIC nanoseconds (Go's monotonic clock is not exposed as a number, so
// it reads the clock itself), comparable with the driver's and other processes' stamps.
//
//	go_recipe waiters ENDPOINT NAME COUNT HOLD_MS
//	  COUNT mutexes on NAME, each on its own session, all on one client. Each prints "ACQ NS" when it takes the
//	  lock, holds it HOLD_MS, prints "REL NS", unlocks and queues again.
//	go_recipe cycles ENDPOINT NAME SECONDS
//	  One mutex, uncontended: Lock+Unlock as often as it can for SECONDS; prints "CYCLES N SECONDS".
//	go_recipe locks ENDPOINT PREFIX COUNT CONCURRENCY
//	  COUNT mutexes PREFIX00001... on one session, at most CONCURRENCY Lock calls in flight; prints
//	  "LOCKS N MS" (the time until every one is held) and exits without unlocking (the driver deletes the keys).
//	go_recipe handoff ENDPOINT NAME
//	  Two mutexes on NAME, each on its own client and session (as two services would have; ours are two
//	  lock_managers, each on its own session). The first takes the lock and prints "ACQUIRED NS". Reads commands,
//	  one a line:
//	    contend  the idle one contends on a new session and prints "QUEUED NS" once its key stands
//	    release  stamps the time just before the holder's Unlock and prints it as "RELEASE NS"; the waiter prints
//	             "ACQUIRED NS" with the time its Lock returned; the old holder closes its session (revoking its
//	             lease) and stays idle
//	    quit     exits
package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
)

var out sync.Mutex

// The same clock as the C++ programs' (std::chrono::steady_clock).
func nowNs() int64 {
	var ts syscall.Timespec
	const clockMonotonic = 1
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Nano()
}

// One line in one write: the driver reads lines from a pipe.
func say(format string, args ...interface{}) {
	out.Lock()
	defer out.Unlock()
	os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "go_recipe:", err)
	os.Exit(1)
}

func connect(endpoint string) *clientv3.Client {
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		fail(err)
	}
	return c
}

func waiter(c *clientv3.Client, name string, hold time.Duration) {
	s, err := concurrency.NewSession(c, concurrency.WithTTL(10))
	if err != nil {
		fail(err)
	}
	m := concurrency.NewMutex(s, name)
	for {
		if err := m.Lock(context.Background()); err != nil {
			fail(err)
		}
		say("ACQ %d", nowNs())
		time.Sleep(hold)
		say("REL %d", nowNs())
		if err := m.Unlock(context.Background()); err != nil {
			fail(err)
		}
	}
}

func cycles(c *clientv3.Client, name string, seconds float64) {
	s, err := concurrency.NewSession(c, concurrency.WithTTL(10))
	if err != nil {
		fail(err)
	}
	m := concurrency.NewMutex(s, name)
	n := 0
	begin := time.Now()
	for time.Since(begin).Seconds() < seconds {
		if err := m.Lock(context.Background()); err != nil {
			fail(err)
		}
		if err := m.Unlock(context.Background()); err != nil {
			fail(err)
		}
		n++
	}
	say("CYCLES %d %.3f", n, time.Since(begin).Seconds())
}

func locks(c *clientv3.Client, prefix string, count, concurrency_ int) {
	s, err := concurrency.NewSession(c, concurrency.WithTTL(10))
	if err != nil {
		fail(err)
	}
	begin := time.Now()
	slots := make(chan struct{}, concurrency_)
	var wg sync.WaitGroup
	for i := 1; i <= count; i++ {
		slots <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			m := concurrency.NewMutex(s, fmt.Sprintf("%s%05d", prefix, i))
			if err := m.Lock(context.Background()); err != nil {
				fail(err)
			}
			<-slots
		}(i)
	}
	wg.Wait()
	say("LOCKS %d %.1f", count, float64(time.Since(begin).Microseconds())/1000)
}

// One side of the hand-off: a mutex on its own session, Lock called in the background.
type contender struct {
	s        *concurrency.Session
	m        *concurrency.Mutex
	acquired chan int64 // the time Lock returned
}

func contend(c *clientv3.Client, name string) *contender {
	s, err := concurrency.NewSession(c, concurrency.WithTTL(10))
	if err != nil {
		fail(err)
	}
	k := &contender{s, concurrency.NewMutex(s, name), make(chan int64, 1)}
	go func() {
		if err := k.m.Lock(context.Background()); err != nil {
			fail(err)
		}
		k.acquired <- nowNs()
	}()
	return k
}

// Until both keys stand under NAME/: the holder's and the waiter's.
func waitQueued(c *clientv3.Client, name string) {
	for {
		r, err := c.Get(context.Background(), name+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			fail(err)
		}
		if r.Count >= 2 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func handoff(endpoint, name string) {
	clients := [2]*clientv3.Client{connect(endpoint), connect(endpoint)}
	holder := 0
	var k [2]*contender
	k[0] = contend(clients[0], name)
	say("ACQUIRED %d", <-k[0].acquired)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		idle := 1 - holder
		switch in.Text() {
		case "contend":
			if k[idle] == nil {
				k[idle] = contend(clients[idle], name)
				waitQueued(clients[idle], name)
				say("QUEUED %d", nowNs())
			}
		case "release":
			if k[idle] == nil {
				fail(fmt.Errorf("release with nobody queued"))
			}
			start := nowNs()
			if err := k[holder].m.Unlock(context.Background()); err != nil {
				fail(err)
			}
			say("RELEASE %d", start)
			say("ACQUIRED %d", <-k[idle].acquired)
			k[holder].s.Close()
			k[holder] = nil
			holder = idle
		case "quit":
			return
		}
	}
}

func number(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fail(err)
	}
	return n
}

func main() {
	a := os.Args[1:]
	switch {
	case len(a) == 5 && a[0] == "waiters":
		c := connect(a[1])
		for i := 0; i < number(a[3]); i++ {
			go waiter(c, a[2], time.Duration(number(a[4]))*time.Millisecond)
		}
		select {}
	case len(a) == 4 && a[0] == "cycles":
		cycles(connect(a[1]), a[2], float64(number(a[3])))
	case len(a) == 5 && a[0] == "locks":
		locks(connect(a[1]), a[2], number(a[3]), number(a[4]))
	case len(a) == 3 && a[0] == "handoff":
		handoff(a[1], a[2])
	default:
		fmt.Fprintln(os.Stderr, "usage: go_recipe waiters ENDPOINT NAME COUNT HOLD_MS | cycles ENDPOINT NAME SECONDS | locks ENDPOINT PREFIX COUNT CONCURRENCY | handoff ENDPOINT NAME")
		os.Exit(2)
	}
}
