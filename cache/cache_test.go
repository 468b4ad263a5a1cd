package cache

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/mediafs/mediafs/device"
)

func mem(n int) *device.Memory {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i / 512)
	}
	return device.NewMemory(b, 512)
}

func TestPinAccounting(t *testing.T) {
	c := New(mem(512*64), 512, 4)
	var held []*Block
	for i := int64(0); i < 10; i++ {
		b, err := c.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		if b.Data[0] != byte(i) {
			t.Fatalf("block %d holds %d", i, b.Data[0])
		}
		held = append(held, b)
	}
	if s := c.Stats(); s.Pinned != 10 || s.Pins != 10 {
		t.Fatalf("stats %+v, want 10 pinned", s)
	}
	for _, b := range held {
		c.Release(b)
	}
	if s := c.Stats(); s.Pinned != 0 || s.Pins != 0 || s.Cached > 4 {
		t.Fatalf("after release: %+v, want nothing pinned and at most 4 cached", s)
	}
}

// failing fails reads of one sector and counts reads.
type failing struct {
	device.Device
	bad   int64
	mu    sync.Mutex
	reads int
}

func (f *failing) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	f.reads++
	f.mu.Unlock()
	if off/512 <= f.bad && f.bad < (off+int64(len(p)))/512 {
		return 0, &device.SectorError{Op: "read", Sector: f.bad, Err: device.ErrBadSector}
	}
	return f.Device.ReadAt(p, off)
}

func TestFailedLoadLeavesNothingPinned(t *testing.T) {
	dev := &failing{Device: mem(512 * 16), bad: 5}
	c := New(dev, 512, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Get(5)
			if !errors.Is(err, device.ErrBadSector) {
				t.Errorf("Get of a bad block: %v", err)
			}
		}()
	}
	wg.Wait()
	if s := c.Stats(); s.Pins != 0 || s.Cached != 0 {
		t.Fatalf("after failed loads: %+v", s)
	}
	// The failure is not cached: the medium is asked again.
	before := dev.reads
	c.Get(5)
	if dev.reads == before {
		t.Fatal("a failed block was served from the cache")
	}
	// Other blocks still work.
	b, err := c.Get(6)
	if err != nil {
		t.Fatal(err)
	}
	c.Release(b)
}

func TestDirtyFlushCoalesces(t *testing.T) {
	m := mem(512 * 16)
	s := device.NewStrict(m)
	c := New(s, 512, 2)
	for _, n := range []int64{3, 4, 5, 9} {
		b, err := c.GetZero(n)
		if err != nil {
			t.Fatal(err)
		}
		b.Data[0] = 0xAA
		c.Release(b)
	}
	if st := c.Stats(); st.Dirty != 4 || st.Cached != 4 {
		t.Fatalf("dirty blocks evicted or lost: %+v", st)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if s.Writes.Load() != 2 {
		t.Fatalf("flush issued %d writes, want 2 (3-5 coalesced, then 9)", s.Writes.Load())
	}
	for _, n := range []int64{3, 4, 5, 9} {
		if m.Bytes()[n*512] != 0xAA || !bytes.Equal(m.Bytes()[n*512+1:(n+1)*512], make([]byte, 511)) {
			t.Fatalf("block %d not written back", n)
		}
	}
	if st := c.Stats(); st.Dirty != 0 || st.Pins != 0 {
		t.Fatalf("after flush: %+v", st)
	}
}

func TestFlushErrorKeepsBlockDirty(t *testing.T) {
	m := mem(512 * 8)
	m.SetReadOnly(true)
	c := New(m, 512, 8)
	b, _ := c.Get(2)
	b.Data[0] = 1
	c.MarkDirty(b)
	c.Release(b)
	if err := c.Flush(); !errors.Is(err, device.ErrReadOnly) {
		t.Fatalf("flush to a read-only medium: %v", err)
	}
	if st := c.Stats(); st.Dirty != 1 || st.Pins != 0 {
		t.Fatalf("after failed flush: %+v", st)
	}
	c.Discard()
	if st := c.Stats(); st.Dirty != 0 {
		t.Fatalf("after discard: %+v", st)
	}
}

func TestReadAtSpansBlocks(t *testing.T) {
	c := New(mem(512*8), 512, 2)
	p := make([]byte, 1000)
	if _, err := c.ReadAt(p, 300); err != nil {
		t.Fatal(err)
	}
	for i, v := range p {
		if v != byte((300+i)/512) {
			t.Fatalf("byte %d = %d", i, v)
		}
	}
	if st := c.Stats(); st.Pins != 0 {
		t.Fatalf("ReadAt left pins: %+v", st)
	}
}

// TestPreload: the missing blocks of a range come in one request per run,
// cached blocks are left alone, and a run that fails leaves each block to
// be read alone, with its own error.
func TestPreload(t *testing.T) {
	mem := device.NewMemory(make([]byte, 64*512), 512)
	for i := range 64 {
		mem.Bytes()[i*512] = byte(i)
	}
	strict := device.NewStrict(mem)
	c := New(strict, 512, 100)
	b, _ := c.Get(5)
	c.Release(b)
	before := strict.Reads.Load()
	c.Preload(0, 10) // blocks 0-4 and 6-9 missing: two runs
	if n := strict.Reads.Load() - before; n != 2 {
		t.Errorf("Preload of two runs made %d requests", n)
	}
	before = strict.Reads.Load()
	for i := range int64(10) {
		b, err := c.Get(i)
		if err != nil || b.Data[0] != byte(i) {
			t.Fatalf("block %d: %v", i, err)
		}
		c.Release(b)
	}
	if n := strict.Reads.Load() - before; n != 0 {
		t.Errorf("Gets after Preload made %d requests", n)
	}
	fd := device.NewFaulty(mem)
	c = New(fd, 512, 100)
	fd.FailReads(23*512, 512)
	c.Preload(20, 8)
	for i := int64(20); i < 28; i++ {
		b, err := c.Get(i)
		if i == 23 {
			var se *device.SectorError
			if !errors.As(err, &se) || se.Sector != 23 {
				t.Errorf("block 23: %v, want its own bad sector", err)
			}
			continue
		}
		if err != nil || b.Data[0] != byte(i) {
			t.Fatalf("block %d after a failed run: %v", i, err)
		}
		c.Release(b)
	}
	if st := c.Stats(); st.Pins != 0 || st.Pinned != 0 {
		t.Errorf("pins left: %+v", st)
	}
}

// TestPreloadHintDevice: with a hint device, Preload reads through it and
// reports a failure, and a Get of a block whose preload failed reads it
// again through the cache's own device (whose errors a caller may be
// watching), even when the run was a single block.
func TestPreloadHintDevice(t *testing.T) {
	m := mem(16 * 512)
	own := device.NewFaulty(m)
	hint := device.NewFaulty(m)
	c := New(own, 512, 100)
	c.SetHintDevice(hint)
	if !c.Preload(0, 4) {
		t.Fatal("a good run reported as failed")
	}
	if r, _, _ := own.Counts(); r != 0 {
		t.Errorf("Preload read %d times through the cache's own device", r)
	}
	hint.FailReads(8*512, 512)
	if c.Preload(6, 4) {
		t.Error("a failed run reported as read")
	}
	// A single missing block is left to the Get that wants it: no read
	// through either device (one failing block would fail twice).
	hr, _, _ := hint.Counts()
	if !c.Preload(8, 1) {
		t.Error("a preload that read nothing reported as failed")
	}
	if r, _, _ := hint.Counts(); r != hr {
		t.Error("Preload of one block read it")
	}
	b, err := c.Get(8)
	if err != nil || b.Data[0] != 8 {
		t.Fatalf("block 8 after a failed hint read: %v", err)
	}
	c.Release(b)
	if r, _, f := own.Counts(); r != 1 || f != 0 {
		t.Errorf("the cache's own device: %d reads, %d failed; want 1, 0", r, f)
	}
}
