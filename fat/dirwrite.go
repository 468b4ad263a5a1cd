package fat

import (
	"fmt"
)

// dirLoc is the layout of a directory being changed: its sectors in
// order (the FAT12/16 fixed root region, or the sectors of its chain) and
// how many 32-byte slots it holds.
type dirLoc struct {
	d        *node
	key      uint32
	secs     []int64
	slots    int
	fixed    bool   // the FAT12/16 root: cannot grow
	last     uint32 // last cluster of the chain
	perSec   int
	secIndex map[int64]int
}

func (v *FS) dirLayout(d *node) (*dirLoc, error) {
	per := v.g.sectorSize / dirEntrySize
	dl := &dirLoc{d: d, key: v.dirKey(d), perSec: per}
	if d.root && v.g.fatType != fat32 {
		dl.fixed = true
		for s := range v.g.rootSectors {
			dl.secs = append(dl.secs, v.g.rootStart+s)
		}
		dl.slots = min(v.g.rootEntries, len(dl.secs)*per)
		return dl, nil
	}
	perCluster := int64(v.g.clusterSize / dirEntrySize)
	cls, err := v.chainClusters(dl.key, -1)
	if err != nil {
		return nil, err
	}
	if int64(len(cls)) > (maxDirEntries+perCluster-1)/perCluster {
		return nil, corruptf(dl.key, "directory at cluster %d is longer than 65536 entries", dl.key)
	}
	for _, c := range cls {
		dl.addCluster(v, c)
	}
	return dl, nil
}

func (dl *dirLoc) addCluster(v *FS, c uint32) {
	s := v.g.clusterSector(c)
	for k := range int64(v.g.secPerClus) {
		dl.secs = append(dl.secs, s+k)
	}
	dl.slots = len(dl.secs) * dl.perSec
	dl.last = c
	dl.secIndex = nil
}

// slotOff is the volume byte offset of slot i.
func (dl *dirLoc) slotOff(v *FS, i int) int64 {
	return v.g.sectorOffset(dl.secs[i/dl.perSec]) + int64(i%dl.perSec)*dirEntrySize
}

// slotIndex is the slot at volume byte offset off (-1 if not in the
// directory).
func (dl *dirLoc) slotIndex(v *FS, off int64) int {
	if dl.secIndex == nil {
		dl.secIndex = make(map[int64]int, len(dl.secs))
		for i, s := range dl.secs {
			dl.secIndex[s] = i
		}
	}
	ss := int64(v.g.sectorSize)
	i, ok := dl.secIndex[off/ss]
	if !ok {
		return -1
	}
	return i*dl.perSec + int(off%ss)/dirEntrySize
}

// firstBytes reads the first byte of every slot.
func (v *FS) firstBytes(dl *dirLoc) ([]byte, error) {
	out := make([]byte, 0, dl.slots)
	for _, s := range dl.secs {
		b, err := v.cache.Get(s)
		if err != nil {
			return nil, err
		}
		for i := 0; i < dl.perSec && len(out) < dl.slots; i++ {
			out = append(out, b.Data[i*dirEntrySize])
		}
		v.cache.Release(b)
	}
	return out, nil
}

// findFree finds k consecutive free slots: deleted ones, or any from the
// end marker on. It returns the first slot, and whether the run reaches
// into the area after the end marker (-1 if there is no such run).
func (v *FS) findFree(dl *dirLoc, k int) (int, bool, error) {
	fb, err := v.firstBytes(dl)
	if err != nil {
		return -1, false, err
	}
	run, start, end := 0, 0, false
	for i, b := range fb {
		if b == nameEnd {
			end = true
		}
		if end || b == nameFree {
			if run == 0 {
				start = i
			}
			run++
			if run == k {
				return start, end, nil
			}
		} else {
			run = 0
		}
	}
	return -1, false, nil
}

// growDir adds one zeroed cluster to a directory: zeros on the medium
// first, then the FAT (the new cluster's end of chain, then the link).
func (v *FS) growDir(dl *dirLoc) error {
	if dl.fixed {
		return fmt.Errorf("%w: the root directory is full (%d entries)", ErrNoSpace, v.g.rootEntries)
	}
	if dl.slots+v.g.clusterSize/dirEntrySize > maxDirEntries {
		return fmt.Errorf("%w: directory full (FAT directories hold at most %d entries)", ErrNoSpace, maxDirEntries)
	}
	cls, err := v.allocate(1, dl.last)
	if err != nil {
		return err
	}
	c := cls[0]
	if err := v.zeroCluster(c, nil); err != nil {
		if !v.markBad(cls, v.g.clusterOffset(c), int64(v.g.clusterSize), err)[c] {
			v.alloc.set(c, false)
		}
		return err
	}
	if err := v.linkNew(cls); err != nil {
		return err
	}
	if err := v.linkFrom(dl.last); err != nil {
		return err
	}
	if err := v.setFAT(dl.last, c); err != nil {
		return err
	}
	if err := v.flushFAT(); err != nil {
		return err
	}
	dl.addCluster(v, c)
	return nil
}

// zeroCluster writes cluster c straight to the medium: head (if any) and
// then zeros, and drops any cached copy of its sectors.
func (v *FS) zeroCluster(c uint32, head []byte) error {
	buf := make([]byte, v.g.clusterSize)
	copy(buf, head)
	off := v.g.clusterOffset(c)
	v.cache.Invalidate(off, int64(len(buf)))
	if _, err := v.dev.WriteAt(buf, off); err != nil {
		return err
	}
	return nil
}

// writeSlots puts raw 32-byte entries into slots start… of the directory
// and flushes them: the slot after the run (when the run used the area past
// the end marker) is zeroed first so that it ends the directory, then the
// block of the last entry (the short entry), then the others. A crash in
// between leaves at worst the short entry without its long name.
func (v *FS) writeSlots(dl *dirLoc, start int, raws [][]byte, pastEnd bool) error {
	var order []int64
	if after := start + len(raws); pastEnd && after < dl.slots {
		junk := false
		blk, err := v.setSlot(dl, after, func(p []byte) {
			if p[0] != nameEnd {
				clear(p)
				junk = true
			}
		})
		if err != nil {
			return err
		}
		if junk && v.deferring {
			// The new end marker must reach the medium before the entries
			// in front of it, batch or not; whatever else of the batch
			// its block holds may go with it once the FAT is out.
			if err := v.commitFAT(); err != nil {
				return err
			}
			if err := v.ioErr(v.cache.FlushRange(blk, blk+1)); err != nil {
				return err
			}
		}
		order = append(order, blk)
	}
	var blocks []int64
	for i, raw := range raws {
		blk, err := v.setSlot(dl, start+i, func(p []byte) { copy(p, raw) })
		if err != nil {
			return err
		}
		blocks = append(blocks, blk)
	}
	order = append(order, blocks[len(blocks)-1])
	for i := len(blocks) - 2; i >= 0; i-- {
		order = append(order, blocks[i])
	}
	err := v.flushBlocks(order...)
	v.noteNewSlots(dl, start, raws, err)
	return err
}

// noteNewSlots adds the entry just written to the directory's cached parse,
// parsing the new slots with the reader's own parser, so that filling a
// directory does not re-parse it once per entry. Anything unexpected (an
// error, slots that are not exactly one entry) drops the cached parse.
func (v *FS) noteNewSlots(dl *dirLoc, start int, raws [][]byte, err error) {
	if err != nil {
		v.dirs.forget(dl.key)
		return
	}
	p := dirParser{cp: v.cp, fatType: v.g.fatType}
	var got *node
	for i, raw := range raws {
		sec := dl.secs[(start+i)/dl.perSec]
		off := v.g.sectorOffset(sec) + int64((start+i)%dl.perSec)*dirEntrySize
		n, _ := p.feed(raw, off)
		if n != nil {
			if got != nil {
				v.dirs.forget(dl.key)
				return
			}
			got = n
		}
	}
	if got == nil {
		v.dirs.forget(dl.key)
		return
	}
	v.dirs.addNode(dl.key, got)
}

// setSlot changes slot i through the cache and returns its block.
func (v *FS) setSlot(dl *dirLoc, i int, f func(p []byte)) (int64, error) {
	sec := dl.secs[i/dl.perSec]
	off := v.g.sectorOffset(sec) + int64(i%dl.perSec)*dirEntrySize
	return sec, v.modBlock(off, dirEntrySize, f)
}

// deleteSlots marks the entry of n (its long-name slots and its short
// entry) deleted and flushes: the long-name slots first, then the short
// entry, so that a crash leaves the short entry alone at worst.
func (v *FS) deleteSlots(dl *dirLoc, n *node) error {
	lo, hi := dl.slotIndex(v, n.lfnOff), dl.slotIndex(v, n.off)
	if lo < 0 || hi < 0 || lo > hi {
		lo = dl.slotIndex(v, n.off)
		hi = lo
		if lo < 0 {
			return corruptf(dl.key, "entry at byte %d is not in its directory", n.off)
		}
	}
	var blocks []int64
	for i := lo; i <= hi; i++ {
		blk, err := v.setSlot(dl, i, func(p []byte) { p[0] = nameFree })
		if err != nil {
			return err
		}
		if len(blocks) == 0 || blocks[len(blocks)-1] != blk {
			blocks = append(blocks, blk)
		}
	}
	v.dirs.forget(dl.key)
	return v.flushBlocks(blocks...)
}

// slotsFor is the number of slots a name needs at most: the short entry
// and, for a long name, one slot per 13 UTF-16 units.
func slotsFor(name string, p shortPlan) int {
	if !p.needLFN {
		return 1
	}
	u := utf16Len(name)
	return 1 + (u+lfnChars-1)/lfnChars
}

// addEntry stores a new entry named name in directory d, growing the
// directory if it must. ent's name fields are filled in here. It returns
// the node as a reader would see it.
func (v *FS) addEntry(d *node, name string, ent dirEntry) (*node, error) {
	pd, err := v.dir(d)
	if err != nil {
		return nil, err
	}
	taken := make(map[[11]byte]bool, len(pd.list))
	for _, n := range pd.list {
		taken[n.ent.Name] = true
	}
	plan, err := planName(v.cp, name, func(s [11]byte) bool { return taken[s] })
	if err != nil {
		return nil, err
	}
	ent.Name, ent.NTRes = plan.sfn, plan.ntres
	var raws [][]byte
	if plan.needLFN {
		slots, err := lfnSlots(name, shortNameChecksum(plan.sfn))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNameTooLong, err)
		}
		for i := range slots {
			raw := make([]byte, dirEntrySize)
			slots[i].encode(raw)
			raws = append(raws, raw)
		}
	}
	raw := make([]byte, dirEntrySize)
	ent.encode(raw)
	raws = append(raws, raw)

	dl, err := v.dirLayout(d)
	if err != nil {
		return nil, err
	}
	start, pastEnd, err := v.findFree(dl, len(raws))
	for err == nil && start < 0 {
		if err = v.growDir(dl); err == nil {
			start, pastEnd, err = v.findFree(dl, len(raws))
		}
	}
	if err != nil {
		return nil, err
	}
	if err := v.writeSlots(dl, start, raws, pastEnd); err != nil {
		return nil, err
	}
	n := &node{ent: ent, off: dl.slotOff(v, start+len(raws)-1), lfnOff: dl.slotOff(v, start)}
	n.short, n.name = shortName(v.cp, &n.ent)
	if plan.needLFN {
		n.name = name
	}
	return n, nil
}

// reserveSlots makes sure directory d has room for k more slots, growing
// it now if needed (before an operation that must not fail half-way).
func (v *FS) reserveSlots(d *node, k int) error {
	dl, err := v.dirLayout(d)
	if err != nil {
		return err
	}
	start, _, err := v.findFree(dl, k)
	for err == nil && start < 0 {
		if err = v.growDir(dl); err == nil {
			start, _, err = v.findFree(dl, k)
		}
	}
	return err
}

// updateEntryOf changes an open file's entry with f: on the medium, or
// for an orphan (removed while open, its entry gone) only in memory.
func (v *FS) updateEntryOf(st *fileState, f func(e *dirEntry)) error {
	if st.orphan {
		f(&st.n.ent)
		return nil
	}
	return v.updateEntry(st.n.off, f)
}

// updateEntry rewrites the short entry at volume offset off with f and
// flushes it.
func (v *FS) updateEntry(off int64, f func(e *dirEntry)) error {
	err := v.modBlock(off, dirEntrySize, func(p []byte) {
		e := decodeDirEntry(p)
		f(&e)
		e.encode(p)
	})
	if err != nil {
		return err
	}
	return v.flushBlocks(off / int64(v.g.sectorSize))
}
