// Package cache is a bounded block cache over a device.
//
// Metadata (FAT sectors, directory clusters, volume descriptors, directory
// extents, path tables) goes through the cache; large file reads and writes
// go straight between the device and the caller's buffer.
//
// Get pins a block: the block cannot be evicted and its Data stays valid
// until the matching Release. Pinning is acquiring a resource, and every Get
// has exactly one Release on every path, error paths included. This is the
// lesson of Microsoft KB Q243415, where Windows NT 4.0's FAT driver kept an
// object held after a bad sector and the next request waited on it forever.
// Stats reports pinned and dirty blocks, and the tests assert that both are
// back to zero after every operation, failed ones above all.
//
// No lock is held while the device is read or written: a medium that stalls
// on one block stalls only the callers that asked for that block. Callers
// that want the same block while it loads wait for that one load; if it
// fails, all of them get the error and the block is not kept, so a later Get
// tries the medium again.
//
// Dirty blocks are never evicted; Flush writes them back, coalescing
// adjacent blocks into one device write. Clean, unpinned blocks are evicted
// least recently used first once more than the configured number are held.
package cache

import (
	"container/list"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/mediafs/mediafs/device"
)

// Block is one cached block. Data is valid while the block is pinned.
type Block struct {
	N    int64  // block number
	Data []byte // BlockSize bytes

	pins  int
	dirty bool
	ready chan struct{} // closed once loaded (or failed)
	err   error         // load error, set before ready is closed
	elem  *list.Element // position in the LRU list while unpinned
}

// Stats counts what the cache holds.
type Stats struct {
	Cached int // blocks held
	Pinned int // blocks with at least one pin
	Pins   int // outstanding Get calls without a Release
	Dirty  int // blocks not yet written back
}

// Cache is a bounded cache of fixed-size blocks of a device. It is safe for
// concurrent use.
type Cache struct {
	dev       device.Device
	hint      device.Device // Preload's device, if not dev (SetHintDevice)
	bs        int
	maxClean  int
	mu        sync.Mutex
	blocks    map[int64]*Block
	lru       *list.List // unpinned, loaded blocks; front = most recent
	pins      int
	dirty     map[int64]*Block // the dirty blocks, so that flushes do not scan the cache
	pinnedBlk int
}

// New returns a cache of blocks of blockSize bytes (a multiple of the
// device's sector size) that keeps at most maxBlocks unpinned clean blocks.
func New(dev device.Device, blockSize, maxBlocks int) *Cache {
	if blockSize <= 0 || blockSize%dev.SectorSize() != 0 {
		panic(fmt.Sprintf("cache.New: block size %d is not a multiple of the sector size %d", blockSize, dev.SectorSize()))
	}
	if maxBlocks < 1 {
		maxBlocks = 1
	}
	return &Cache{dev: dev, bs: blockSize, maxClean: maxBlocks, blocks: make(map[int64]*Block), lru: list.New(), dirty: make(map[int64]*Block)}
}

// BlockSize is the size of a block in bytes.
func (c *Cache) BlockSize() int { return c.bs }

// Device is the device under the cache.
func (c *Cache) Device() device.Device { return c.dev }

// Blocks is the number of whole blocks on the device.
func (c *Cache) Blocks() int64 { return c.dev.Size() / int64(c.bs) }

// Get returns block n, pinned, reading it from the device if needed.
func (c *Cache) Get(n int64) (*Block, error) { return c.get(n, true) }

// GetZero returns block n, pinned, zeroed and marked dirty, without
// reading the device. A copy already cached is zeroed too: the block is
// being reused (a new directory cluster where an old one was), and its old
// contents must not survive. Callers must not hold the block pinned for
// reading at the same time.
func (c *Cache) GetZero(n int64) (*Block, error) {
	b, err := c.get(n, false)
	if err != nil {
		return nil, err
	}
	c.MarkDirty(b)
	return b, nil
}

func (c *Cache) get(n int64, read bool) (*Block, error) {
	if n < 0 || n >= c.Blocks() {
		return nil, &device.SectorError{Op: "read", Sector: n * int64(c.bs) / int64(c.dev.SectorSize()), Err: device.ErrOutOfRange}
	}
	c.mu.Lock()
	if b, ok := c.blocks[n]; ok {
		c.pinLocked(b)
		ready := b.ready
		c.mu.Unlock()
		<-ready
		if b.err != nil {
			c.mu.Lock()
			c.unpinLocked(b)
			c.mu.Unlock()
			if b.err == errRunFailed {
				// A Preload's run failed somewhere: read this block alone,
				// so that its own error (if any) names its own sector.
				return c.get(n, read)
			}
			return nil, b.err
		}
		if !read {
			// A cached block asked for as new is zeroed by the caller's intent.
			clear(b.Data)
		}
		return b, nil
	}
	b := &Block{N: n, Data: make([]byte, c.bs), ready: make(chan struct{})}
	c.blocks[n] = b
	c.pinLocked(b)
	c.mu.Unlock()

	var err error
	if read {
		_, err = c.dev.ReadAt(b.Data, n*int64(c.bs))
	}
	c.mu.Lock()
	if err != nil {
		b.err = err
		delete(c.blocks, n)
		c.unpinLocked(b)
	}
	close(b.ready)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Cached reports whether block n is in the cache (or being read into it).
func (c *Cache) Cached(n int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.blocks[n]
	return ok
}

// errRunFailed marks the blocks of a Preload run that could not be read
// as a whole; a Get waiting for one of them reads it alone.
var errRunFailed = errors.New("cache: preload run failed")

// maxRun is the most blocks Preload reads in one device request.
const maxRun = 128

// SetHintDevice makes Preload read through d, which must be the same
// medium as the cache's device: a caller that watches its device for media
// errors (to mark the volume) gives the unwatched one here, because a
// preload is only a hint, and its failure says nothing about the blocks a
// caller will actually ask for (each is then read alone, through the
// cache's own device).
func (c *Cache) SetHintDevice(d device.Device) { c.hint = d }

// Preload reads the blocks [lo, lo+n) that are not cached yet in one device
// request per run of two or more missing blocks (at most maxRun each), so that
// a caller about to Get them one by one (a directory, a stretch of the
// FAT) costs one request instead of one per block. It is only a hint: if a
// run cannot be read, its blocks are dropped and each later Get reads its
// block alone and reports that block's own error. Blocks being loaded,
// cached or dirty are left alone. It reports whether every run was read.
func (c *Cache) Preload(lo, n int64) (ok bool) {
	dev := c.dev
	if c.hint != nil {
		dev = c.hint
	}
	ok = true
	hi := min(lo+min(n, int64(c.maxClean)), c.Blocks())
	for lo < hi {
		// The next run of missing blocks, reserved (pinned, not ready) so
		// that concurrent Gets wait for it rather than read it again.
		c.mu.Lock()
		for lo < hi && c.blocks[lo] != nil {
			lo++
		}
		k := lo
		for k < hi && k-lo < maxRun && c.blocks[k] == nil {
			k++
		}
		if k-lo == 1 {
			// One block: no request saved; the Get that wants it reads
			// it (and, failing, fails only once).
			c.mu.Unlock()
			lo++
			continue
		}
		var run []*Block
		for j := lo; j < k; j++ {
			b := &Block{N: j, Data: make([]byte, c.bs), ready: make(chan struct{})}
			c.blocks[j] = b
			c.pinLocked(b)
			run = append(run, b)
		}
		c.mu.Unlock()
		if len(run) == 0 {
			return ok
		}
		lo += int64(len(run))
		var err error
		buf := make([]byte, len(run)*c.bs)
		if _, err = dev.ReadAt(buf, run[0].N*int64(c.bs)); err == nil {
			for i, b := range run {
				copy(b.Data, buf[i*c.bs:])
			}
		}
		if err != nil {
			ok = false
		}
		c.mu.Lock()
		for _, b := range run {
			if err != nil {
				b.err = errRunFailed // a Get reads it again, alone
				if c.blocks[b.N] == b {
					delete(c.blocks, b.N)
				}
			}
			c.unpinLocked(b)
			close(b.ready)
		}
		c.mu.Unlock()
	}
	return ok
}

func (c *Cache) pinLocked(b *Block) {
	if b.pins == 0 {
		c.pinnedBlk++
		if b.elem != nil {
			c.lru.Remove(b.elem)
			b.elem = nil
		}
	}
	b.pins++
	c.pins++
}

func (c *Cache) unpinLocked(b *Block) {
	b.pins--
	c.pins--
	if b.pins > 0 {
		return
	}
	c.pinnedBlk--
	if b.err != nil {
		return // a failed load: already gone from the map
	}
	if c.blocks[b.N] != b {
		return // invalidated while pinned
	}
	if b.dirty {
		return // dirty blocks stay out of the LRU list until flushed
	}
	b.elem = c.lru.PushFront(b)
	c.evictLocked()
}

// evictLocked drops the least recently used clean blocks beyond the limit.
// The list holds only unpinned clean blocks, so this is O(1) per block
// dropped however many dirty blocks a writer has pending.
func (c *Cache) evictLocked() {
	for c.lru.Len() > c.maxClean {
		e := c.lru.Back()
		b := e.Value.(*Block)
		c.lru.Remove(e)
		b.elem = nil
		delete(c.blocks, b.N)
	}
}

// Release unpins a block returned by Get. The block's Data must not be used
// afterwards.
func (c *Cache) Release(b *Block) {
	if b == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.pins <= 0 {
		panic(fmt.Sprintf("cache: Release of block %d that is not pinned", b.N))
	}
	c.unpinLocked(b)
}

// MarkDirty records that a pinned block's Data was changed and must be
// written back by Flush.
func (c *Cache) MarkDirty(b *Block) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.pins <= 0 {
		panic(fmt.Sprintf("cache: MarkDirty of block %d that is not pinned", b.N))
	}
	c.setDirtyLocked(b)
}

func (c *Cache) setDirtyLocked(b *Block) {
	if !b.dirty {
		b.dirty = true
		c.dirty[b.N] = b
		if b.elem != nil {
			c.lru.Remove(b.elem)
			b.elem = nil
		}
	}
}

func (c *Cache) clearDirtyLocked(b *Block) {
	if b.dirty {
		b.dirty = false
		delete(c.dirty, b.N)
	}
}

// Flush writes every dirty block back to the device in block order,
// coalescing adjacent blocks. A block whose write fails stays dirty; Flush
// goes on with the others and returns the first error.
func (c *Cache) Flush() error { return c.FlushRange(0, -1) }

// FlushRange writes back the dirty blocks numbered lo up to (excluding) hi;
// hi < 0 means to the end. It is for writers that must order their writes
// (data, then the FAT, then the directory entry).
func (c *Cache) FlushRange(lo, hi int64) error {
	c.mu.Lock()
	var list []*Block
	for _, b := range c.dirty {
		if b.N >= lo && (hi < 0 || b.N < hi) {
			list = append(list, b)
		}
	}
	// Pin them so that they stay put while written; copy their data so
	// that writers may keep changing a block while an older image of it
	// goes to the device.
	for _, b := range list {
		c.pinLocked(b)
	}
	c.mu.Unlock()
	slices.SortFunc(list, func(a, b *Block) int { return int(a.N - b.N) })

	var first error
	for i := 0; i < len(list); {
		j := i + 1
		for j < len(list) && list[j].N == list[j-1].N+1 && j-i < 256 {
			j++
		}
		run := list[i:j]
		buf := make([]byte, len(run)*c.bs)
		c.mu.Lock()
		for k, b := range run {
			copy(buf[k*c.bs:], b.Data)
			// Cleared before the write: a change made while the write is
			// under way marks the block dirty again.
			c.clearDirtyLocked(b)
		}
		c.mu.Unlock()
		_, err := c.dev.WriteAt(buf, run[0].N*int64(c.bs))
		if err != nil {
			c.mu.Lock()
			for _, b := range run {
				if c.blocks[b.N] == b {
					c.setDirtyLocked(b)
				}
			}
			c.mu.Unlock()
			if first == nil {
				first = err
			}
		}
		i = j
	}
	c.mu.Lock()
	for _, b := range list {
		c.unpinLocked(b)
	}
	c.mu.Unlock()
	return first
}

// Discard drops dirty blocks without writing them (after a failure that
// makes their contents wrong). Pinned blocks stay cached but are no longer
// dirty.
func (c *Cache) Discard() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for n, b := range c.dirty {
		c.clearDirtyLocked(b)
		if b.pins == 0 && c.blocks[n] == b {
			if b.elem != nil {
				c.lru.Remove(b.elem)
				b.elem = nil
			}
			delete(c.blocks, n)
		}
	}
}

// Invalidate drops the clean cached copies of the blocks that overlap the
// byte range [off, off+n), after the range was written directly to the
// device. Dirty or pinned blocks in the range are an error of the caller.
func (c *Cache) Invalidate(off, n int64) {
	if n <= 0 {
		return
	}
	lo, hi := off/int64(c.bs), (off+n-1)/int64(c.bs)
	c.mu.Lock()
	defer c.mu.Unlock()
	if hi-lo > int64(len(c.blocks)) {
		for k, b := range c.blocks {
			if k >= lo && k <= hi {
				c.dropLocked(b)
			}
		}
		return
	}
	for k := lo; k <= hi; k++ {
		if b, ok := c.blocks[k]; ok {
			c.dropLocked(b)
		}
	}
}

func (c *Cache) dropLocked(b *Block) {
	if b.elem != nil {
		c.lru.Remove(b.elem)
		b.elem = nil
	}
	c.clearDirtyLocked(b)
	delete(c.blocks, b.N)
}

// ReadAt copies len(p) bytes at byte offset off through the cache, block by
// block. It is for metadata that is not block aligned (directory records,
// path tables); file data should bypass the cache.
func (c *Cache) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		b, err := c.Get(pos / int64(c.bs))
		if err != nil {
			return done, err
		}
		done += copy(p[done:], b.Data[pos%int64(c.bs):])
		c.Release(b)
	}
	return done, nil
}

// Stats reports what the cache holds now.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Cached: len(c.blocks), Pinned: c.pinnedBlk, Pins: c.pins, Dirty: len(c.dirty)}
}
