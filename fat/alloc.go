package fat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// allocator is the free-space bitmap of a writable volume: one bit per
// cluster (1 = in use, bad or reserved), built on the first allocation by
// one pass over the active FAT in large reads, then kept in step with every
// FAT change. next is the next-free hint (FSInfo's NxtFree).
type allocator struct {
	used  []uint64 // bit i: cluster i+2
	n     uint32   // clusters
	free  int64
	next  uint32
	built bool
}

func (a *allocator) isFree(c uint32) bool {
	i := c - 2
	return a.used[i>>6]&(1<<(i&63)) == 0
}

func (a *allocator) set(c uint32, used bool) {
	i := c - 2
	w, b := i>>6, uint64(1)<<(i&63)
	was := a.used[w]&b != 0
	switch {
	case used && !was:
		a.used[w] |= b
		a.free--
	case !used && was:
		a.used[w] &^= b
		a.free++
	}
}

// ensureAlloc builds the bitmap if it is not built yet. It must run when no
// FAT block is dirty in the cache (at the start of an operation).
func (v *FS) ensureAlloc() error {
	if v.alloc.built {
		return nil
	}
	if v.deferring {
		// The bitmap is read from the medium's FAT: nothing of it may be
		// pending.
		if err := v.commitFAT(); err != nil {
			return err
		}
	}
	g := v.g
	a := &v.alloc
	a.n = g.clusters
	a.used = make([]uint64, (int64(g.clusters)+63)/64)
	// Clusters past the end of the last word are "used", so no scan finds
	// them.
	for i := int64(g.clusters); i < int64(len(a.used))*64; i++ {
		a.used[i>>6] |= 1 << (i & 63)
	}
	total := g.fatBytes()
	chunk := int64(256 << 10)
	if g.fatType == fat12 {
		chunk = 3 * 64 << 10
	}
	buf := make([]byte, chunk)
	ss := int64(v.dev.SectorSize())
	base := g.fatEntryOffset(v.activeFAT, 0)
	var free int64
	for pos := int64(0); pos < total; pos += chunk {
		n := min(chunk, total-pos)
		rn := (n + ss - 1) / ss * ss
		if _, err := v.dev.ReadAt(buf[:rn], base+pos); err != nil {
			return err
		}
		markUsed(g, buf[:n], pos, a.used)
	}
	for _, w := range a.used {
		free += int64(64 - bits.OnesCount64(w))
	}
	a.free = free
	a.next = 2
	if v.fsinfoOK && g.validCluster(v.fsinfo.NxtFree) {
		a.next = v.fsinfo.NxtFree
	}
	a.built = true
	return nil
}

// markUsed sets the bits of the non-free entries for clusters 2..clusters+1
// in p, the part of a FAT starting at byte pos.
func markUsed(g *geometry, p []byte, pos int64, used []uint64) {
	forEachEntry(g, p, pos, func(c int64, free bool) {
		if !free {
			used[(c-2)>>6] |= 1 << ((c - 2) & 63)
		}
	})
}

// allocate reserves n free clusters in the bitmap (not yet in the FAT),
// preferring to continue after cluster after (0: none), then a run of n
// contiguous clusters from the next-free hint, then any free clusters from
// the hint on. Nothing is reserved when fewer than n are free.
func (v *FS) allocate(n int64, after uint32) ([]uint32, error) {
	if err := v.ensureAlloc(); err != nil {
		return nil, err
	}
	a := &v.alloc
	if n <= 0 {
		return nil, nil
	}
	if n > a.free {
		return nil, fmt.Errorf("%w: %d clusters wanted, %d free", ErrNoSpace, n, a.free)
	}
	out := make([]uint32, 0, n)
	take := func(c uint32) {
		a.set(c, true)
		out = append(out, c)
	}
	if after != 0 {
		for c := after + 1; int64(len(out)) < n && v.g.validCluster(c) && a.isFree(c); c++ {
			take(c)
		}
		if int64(len(out)) == n {
			a.next = out[len(out)-1] + 1
			return out, nil
		}
	}
	rest := n - int64(len(out))
	if start, ok := a.findRun(a.next, rest); ok {
		for c := start; int64(len(out)) < n; c++ {
			take(c)
		}
	} else {
		c := a.next
		for int64(len(out)) < n {
			if !v.g.validCluster(c) {
				c = 2
			}
			c = a.nextFree(c)
			take(c)
			c++
		}
	}
	a.next = out[len(out)-1] + 1
	if !v.g.validCluster(a.next) {
		a.next = 2
	}
	return out, nil
}

// nextFree returns the first free cluster at or after c, wrapping around
// (a free cluster must exist).
func (a *allocator) nextFree(c uint32) uint32 {
	i := c - 2
	words := uint32(len(a.used))
	for range words + 1 {
		w := i >> 6
		if w >= words {
			i, w = 0, 0
		}
		free := ^a.used[w] &^ (uint64(1)<<(i&63) - 1)
		if free != 0 {
			return w<<6 + uint32(bits.TrailingZeros64(free)) + 2
		}
		i = (w + 1) << 6
	}
	return 2
}

// findRun looks for n contiguous free clusters, from c to the end and then
// from the start, skipping whole words in use.
func (a *allocator) findRun(c uint32, n int64) (uint32, bool) {
	if n <= 0 {
		return 0, false
	}
	scan := func(lo, hi uint32) (uint32, bool) { // clusters lo..hi-1
		var start uint32
		var run int64
		for x := lo; x < hi; {
			i := x - 2
			if i&63 == 0 && a.used[i>>6] == ^uint64(0) {
				run = 0
				x += 64
				continue
			}
			if a.isFree(x) {
				if run == 0 {
					start = x
				}
				run++
				if run == n {
					return start, true
				}
			} else {
				run = 0
			}
			x++
		}
		return 0, false
	}
	end := a.n + 2
	if c < 2 || c >= end {
		c = 2
	}
	if s, ok := scan(c, end); ok {
		return s, true
	}
	return scan(2, min(end, c+uint32(min(n, int64(a.n)))))
}

// release returns clusters to the bitmap (after their FAT entries were
// zeroed), or counts them for FSInfo when the bitmap is not built.
func (v *FS) release(cls []uint32) {
	if !v.alloc.built {
		v.freedTotal += int64(len(cls))
		return
	}
	for _, c := range cls {
		v.alloc.set(c, false)
	}
}

// eocMark is the end-of-chain value written.
func (g *geometry) eocMark() uint32 {
	switch g.fatType {
	case fat12:
		return 0xFFF
	case fat16:
		return 0xFFFF
	}
	return 0x0FFFFFFF
}

// fatCopies are the FAT copies written: all of them, unless FAT32
// mirroring is off, when only the active one is.
func (v *FS) fatCopies() []int {
	if v.g.fatType == fat32 && v.bs.ExtFlags&extFlagNoMirror != 0 {
		return []int{v.activeFAT}
	}
	out := make([]int, v.g.numFATs)
	for i := range out {
		out[i] = i
	}
	return out
}

// modByte changes the byte at volume offset off through the cache and
// marks its block dirty.
func (v *FS) modByte(off int64, f func(byte) byte) error {
	return v.modBlock(off, 1, func(p []byte) { p[0] = f(p[0]) })
}

// modBlock lets f change the n bytes at volume offset off (inside one
// block) through the cache, and marks the block dirty if they changed.
func (v *FS) modBlock(off int64, n int, f func(p []byte)) error {
	ss := int64(v.g.sectorSize)
	b, err := v.cache.Get(off / ss)
	if err != nil {
		return err
	}
	defer v.cache.Release(b)
	p := b.Data[off%ss : off%ss+int64(n)]
	before := string(p)
	f(p)
	if string(p) != before {
		v.cache.MarkDirty(b)
	}
	return nil
}

// setFAT writes cluster c's entry in every FAT copy through the cache
// (blocks left dirty for the caller's ordered flush). FAT32 entries keep
// their reserved top 4 bits.
func (v *FS) setFAT(c, val uint32) error {
	for _, i := range v.fatCopies() {
		off := v.g.fatEntryOffset(i, c)
		var err error
		switch v.g.fatType {
		case fat12:
			if c&1 == 0 {
				err = v.modByte(off, func(byte) byte { return byte(val) })
				if err == nil {
					err = v.modByte(off+1, func(o byte) byte { return o&0xF0 | byte(val>>8)&0x0F })
				}
			} else {
				err = v.modByte(off, func(o byte) byte { return o&0x0F | byte(val<<4) })
				if err == nil {
					err = v.modByte(off+1, func(byte) byte { return byte(val >> 4) })
				}
			}
		case fat16:
			err = v.modBytes(off, binary.LittleEndian.AppendUint16(nil, uint16(val)), nil)
		default:
			err = v.modBytes(off, binary.LittleEndian.AppendUint32(nil, val&fat32Mask), []byte{0xFF, 0xFF, 0xFF, 0x0F})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// modBytes writes p at volume offset off (inside one block) through the
// cache; mask, if not nil, selects the bits of each byte that change.
func (v *FS) modBytes(off int64, p, mask []byte) error {
	return v.modBlock(off, len(p), func(d []byte) {
		for k, x := range p {
			if mask != nil {
				x = d[k]&^mask[k] | x&mask[k]
			}
			d[k] = x
		}
	})
}

// chainClusters lists the first count clusters of the chain from first
// (count < 0: all of them), checking it as a reader does.
func (v *FS) chainClusters(first uint32, count int64) ([]uint32, error) {
	if first == 0 || count == 0 {
		return nil, nil
	}
	limit := count
	if limit < 0 {
		limit = int64(v.g.clusters)
	}
	ch := v.newChain(first, limit)
	n, err := ch.length()
	if err != nil {
		return nil, err
	}
	out := make([]uint32, 0, n)
	for _, r := range ch.runs {
		for k := range r.n {
			out = append(out, r.start+k)
		}
	}
	if count >= 0 && int64(len(out)) < count {
		return out, corruptf(ch.last, "cluster chain ends at cluster %d after %d clusters; %d expected", ch.last, len(out), count)
	}
	return out, nil
}

// freeClusters zeroes the FAT entries of cls (dirty in the cache) and
// returns them to the bitmap.
func (v *FS) freeClusters(cls []uint32) error {
	for _, c := range cls {
		if err := v.setFAT(c, 0); err != nil {
			return err
		}
	}
	v.release(cls)
	return nil
}

// linkNew writes the chain cls[0] → … → cls[n-1] → end-of-chain in the
// FAT and flushes it (or, in a batch, leaves it pending); the caller then
// makes it reachable.
func (v *FS) linkNew(cls []uint32) error {
	for i, c := range cls {
		next := v.g.eocMark()
		if i+1 < len(cls) {
			next = cls[i+1]
		}
		if err := v.setFAT(c, next); err != nil {
			return err
		}
		if v.deferring {
			v.pending[c] = struct{}{}
		}
	}
	return v.flushFAT()
}

// Flush helpers: the cache holds one sector per block. The FAT region is
// flushed on its own so that the callers can order it against the
// directories.
func (v *FS) fatBlocks() (lo, hi int64) {
	return v.g.reserved, v.g.reserved + int64(v.g.numFATs)*v.g.fatSectors
}

// flushFAT writes the dirty FAT blocks, every copy, unless the change
// under way is batched.
func (v *FS) flushFAT() error {
	if v.deferring {
		return nil
	}
	return v.commitFAT()
}

// commitFAT writes the dirty FAT blocks now, batch or not. Afterwards no
// cluster is pending.
func (v *FS) commitFAT() error {
	lo, hi := v.fatBlocks()
	if err := v.ioErr(v.cache.FlushRange(lo, hi)); err != nil {
		return err
	}
	clear(v.pending)
	return nil
}

// flushBlocks flushes the given blocks, one after the other, in the order
// given, unless the change under way is batched.
func (v *FS) flushBlocks(blocks ...int64) error {
	if v.deferring {
		return nil
	}
	for _, b := range blocks {
		if err := v.cache.FlushRange(b, b+1); err != nil {
			return v.ioErr(err)
		}
	}
	return nil
}

// flushAll flushes everything still dirty at the end of a write-through
// change: directories first, then the FAT. (Such changes flush their own
// blocks in order; this is the end of each one, after an error above all.)
func (v *FS) flushAll() error {
	lo, hi := v.fatBlocks()
	err := v.cache.FlushRange(hi, -1)
	if e := v.cache.FlushRange(0, lo); err == nil {
		err = e
	}
	if e := v.cache.FlushRange(lo, hi); err == nil {
		err = e
	}
	return v.ioErr(err)
}

// commit writes a batch: every FAT copy first, then the directories and
// the rest, so that no directory entry on the medium ever points at a
// chain the medium's FAT does not hold yet. If the FAT cannot be written,
// the directories are not written either (they stay dirty, and the volume
// stays marked dirty).
func (v *FS) commit() error {
	if err := v.commitFAT(); err != nil {
		return err
	}
	lo, hi := v.fatBlocks()
	err := v.cache.FlushRange(hi, -1)
	if e := v.cache.FlushRange(0, lo); err == nil {
		err = e
	}
	return v.ioErr(err)
}

// writeThrough ends batching for the rest of the change under way: the
// pending batch is written first, then the change's own writes go out in
// its order as it makes them. Changes that free clusters or take an entry
// away (shrinking, removing, renaming) call it first, because their order
// (directory entry before FAT) is the opposite of a batch's.
func (v *FS) writeThrough() error {
	if !v.deferring {
		return nil
	}
	// Still batching if the batch cannot be written: the change fails,
	// and its end must not write the batch's directories (flushAll does
	// them first) while the FAT under them is not on the medium.
	if err := v.commit(); err != nil {
		return err
	}
	v.deferring = false
	return nil
}

// batchLimit is how many bytes of dirty metadata a batch may hold before
// it is written.
const batchLimit = 2 << 20

// linkFrom prepares a link from cluster last (the end of an existing
// chain) to new clusters: if last is on the medium's FAT already, the
// batch's FAT goes out first, so that the link never reaches the medium
// before the chain it points to.
func (v *FS) linkFrom(last uint32) error {
	if !v.deferring {
		return nil
	}
	if _, ok := v.pending[last]; ok {
		return nil
	}
	return v.commitFAT()
}

// ioErr notes a failed metadata write: the volume stays marked dirty at
// Close (R-FAT-5).
func (v *FS) ioErr(err error) error {
	if err != nil {
		v.sticky = true
	}
	return err
}

// ErrFileTooLarge is returned by writes and truncations past FAT's largest
// file size, 4 GiB - 1 bytes (the entry's size field is 32 bits).
var ErrFileTooLarge = errors.New("file too large (FAT files hold at most 4 GiB - 1 bytes)")
