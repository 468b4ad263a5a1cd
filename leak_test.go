package mediafs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/goleak"

	"github.com/mediafs/mediafs"
	"github.com/mediafs/mediafs/device"
	"github.com/mediafs/mediafs/iso9660/mkiso"
)

// TestISOReadersOverBadSectors: 8 goroutines read every file of an ISO
// image with random bad sectors, at 512-byte logical blocks. Every read
// either returns the right bytes or an error that names the file and a
// sector and unwraps to ErrBadSector; nothing hangs; afterwards nothing is
// pinned and no goroutine is left.
func TestISOReadersOverBadSectors(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	src := fstest.MapFS{}
	for i := range 40 {
		src[fmt.Sprintf("D%d/F%02d.BIN", i%4, i)] = &fstest.MapFile{Data: payload(i, 1000+i*37_000), Mode: 0o644}
	}
	var w memWriter
	if _, err := mkiso.Write(&w, src, mkiso.Options{BlockSize: 512, RockRidge: true}); err != nil {
		t.Fatal(err)
	}
	fd := device.NewFaulty(device.NewMemory(w.b, 2048))
	f, err := mediafs.OpenDevice(fd)
	if err != nil {
		t.Fatal(err)
	}
	// Bad sectors among the files' data, after the directories were read
	// (a damaged directory is another test's business).
	if _, err := fs.ReadDir(f, "D0"); err != nil {
		t.Fatal(err)
	}
	for d := range 4 {
		fs.ReadDir(f, fmt.Sprintf("D%d", d))
	}
	r := rand.New(rand.NewPCG(5, 5))
	total := int64(len(w.b)) / 2048
	for range 12 {
		fd.FailSectors(total/4+r.Int64N(total*3/4), 1)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad, good := 0, 0
	done := make(chan struct{})
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				name := fmt.Sprintf("D%d/F%02d.BIN", (i+g)%40%4, (i+g)%40)
				file, err := f.Open(name)
				if err != nil {
					t.Errorf("open %s: %v", name, err)
					return
				}
				got, err := io.ReadAll(file)
				file.Close()
				mu.Lock()
				switch {
				case err == nil && bytes.Equal(got, src[name].Data):
					good++
				case err != nil && errors.Is(err, device.ErrBadSector) && strings.Contains(err.Error(), "/"+name) && strings.Contains(err.Error(), "sector "):
					bad++
				default:
					t.Errorf("%s: %d bytes, %v", name, len(got), err)
				}
				mu.Unlock()
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("readers hung")
	}
	if bad == 0 || good == 0 {
		t.Errorf("%d good and %d failed reads: the bad sectors should hit some files and not others", good, bad)
	}
	if st := f.(mediafs.CacheStatser).CacheStats(); st.Pins != 0 || st.Pinned != 0 {
		t.Errorf("blocks pinned after the readers: %+v", st)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
