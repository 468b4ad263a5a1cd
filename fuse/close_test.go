package fuse

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/mediafs/mediafs"
)

type slowStat struct {
	mediafs.FS
	block atomic.Bool
	gate  chan struct{}
}

func (s *slowStat) Stat(name string) (fs.FileInfo, error) {
	if s.block.Load() && name == "README.TXT" {
		<-s.gate
	}
	return s.FS.Stat(name)
}

// Close while one request waits for a slow medium and another arrives:
// no lock-order deadlock (found in review: Getattr took the gate then the
// node's mutex, a first Read the other way round, and a waiting Close
// tied the knot), Close succeeds once the medium answers, and the late
// request ends.
func TestCloseWhileRequestsWait(t *testing.T) {
	needFUSE(t)
	src := writeTree(t, map[string][]byte{"README.TXT": []byte("hello\n")}, false)
	img := buildFAT(t, "fat16", 16<<20, src)
	inner := openRO(t, img)
	sfs := &slowStat{FS: inner, gate: make(chan struct{})}
	dir := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(dir, 0o755)
	srv, err := Mount(dir, sfs, Options{CloseTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Close(); inner.Close() }()
	if _, err := os.Stat(filepath.Join(dir, "README.TXT")); err != nil {
		t.Fatal(err)
	}
	n := nodeAt(t, srv, "README.TXT")
	if err := srv.Unmount(); err != nil {
		t.Fatal(err)
	}
	sfs.block.Store(true)
	go func() { var out gofuse.AttrOut; n.Getattr(context.Background(), nil, &out) }() // gate R, blocks in Stat
	time.Sleep(100 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }() // gate.Lock pending
	time.Sleep(100 * time.Millisecond)
	readDone := make(chan struct{})
	go func() { n.Read(context.Background(), nil, make([]byte, 10), 0); close(readDone) }() // n.mu, then gate R: blocks
	time.Sleep(100 * time.Millisecond)
	close(sfs.gate) // the medium answers: Getattr now wants n.mu
	select {
	case err := <-closed:
		t.Logf("Close: %v", err)
		if err != nil {
			t.Errorf("Close failed although the medium answered: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
	select {
	case <-readDone:
	case <-time.After(time.Second):
		t.Errorf("the Read never returns (deadlocked with Getattr)")
	}
}
