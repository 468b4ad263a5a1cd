package fat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/mediafs/mediafs/device"
)

// FAT entry values (fatgen103 "FAT Data Structure"). The BAD and
// end-of-chain markers depend on the entry width; see marks.
const (
	fat32Mask = 0x0FFFFFFF // the top 4 bits of a FAT32 entry are reserved

	fat16ClnShut = 0x8000     // FAT[1]: 1 = volume cleanly unmounted
	fat16HrdErr  = 0x4000     // FAT[1]: 0 = a disk I/O error was seen
	fat32ClnShut = 0x08000000 // FAT[1]: 1 = volume cleanly unmounted
	fat32HrdErr  = 0x04000000 // FAT[1]: 0 = a disk I/O error was seen
)

// entryClass classifies a FAT entry value.
type entryClass int

const (
	entFree     entryClass = iota // 0: free cluster
	entNext                       // the next cluster of a chain
	entReserved                   // 1, or a number beyond the last cluster
	entBad                        // …F7: bad cluster
	entEOC                        // ≥ …F8: end of chain
)

// marks returns the BAD marker of the volume's entry width; end-of-chain
// values are those above it.
func (g *geometry) badMark() uint32 {
	switch g.fatType {
	case fat12:
		return 0xFF7
	case fat16:
		return 0xFFF7
	}
	return 0x0FFFFFF7
}

// classify says what a (masked) FAT entry value means.
func (g *geometry) classify(e uint32) entryClass {
	bad := g.badMark()
	switch {
	case e == 0:
		return entFree
	case g.validCluster(e):
		return entNext
	case e == bad:
		return entBad
	case e > bad:
		return entEOC
	}
	return entReserved
}

// fatEntry reads cluster c's entry from the active FAT through the cache,
// one sector at a time (a FAT12 entry may straddle two sectors). Where the
// active copy's sector cannot be read, the mirror copies are asked in turn
// (fatgen103: every copy holds the same entries unless FAT32 mirroring is
// off), so that one bad FAT sector costs nothing while another copy holds
// it; the active copy's error is returned when none can.
func (v *FS) fatEntry(c uint32) (uint32, error) { return v.fatEntryAhead(c, 0, nil) }

// fatWalk is what a chain walk remembers of the FAT's failures, so that a
// bad sector costs the walk one failed read, not one per entry in it (each
// of which may take a dying drive seconds).
type fatWalk struct {
	bad              map[int64]bool // the active copy's sectors that failed
	aheadLo, aheadHi int64          // the last read-ahead that failed
}

// fatEntryAhead is fatEntry for a chain walk w that will go on to about
// ahead more entries: if c's FAT sector is not cached, the sectors of the
// entries c to c+ahead (where a contiguous chain's next entries are) are
// read with it, in one request of at most 64 KiB. The entries of a sector
// that failed in this walk come from the other copies first; only when
// none serves is the active copy tried again (a later read may succeed).
func (v *FS) fatEntryAhead(c, ahead uint32, w *fatWalk) (uint32, error) {
	ss := int64(v.g.sectorSize)
	off := v.g.fatEntryOffset(v.activeFAT, c)
	sec := off / ss
	triedOthers := w != nil && w.bad[sec]
	if triedOthers {
		if e, ok := v.fatEntryOthers(c); ok {
			return e, nil
		}
	}
	e, err := v.fatEntryIn(v.activeFAT, c, ahead, w)
	if err == nil || !device.IsMediaError(err) {
		return e, err
	}
	// A FAT12 entry may straddle two sectors: its failure may be the
	// second's, so it is not remembered.
	if w != nil && (v.g.fatType != fat12 || off%ss != ss-1) {
		if w.bad == nil {
			w.bad = map[int64]bool{}
		}
		w.bad[sec] = true
	}
	if !triedOthers {
		if e2, ok := v.fatEntryOthers(c); ok {
			return e2, nil
		}
	}
	return e, err
}

// fatEntryOthers reads c's entry from the FAT copies other than the active
// one, the first that can be read.
func (v *FS) fatEntryOthers(c uint32) (uint32, bool) {
	for _, i := range v.readableFATs()[1:] {
		if e, err := v.fatEntryIn(i, c, 0, nil); err == nil {
			return e, true
		}
	}
	return 0, false
}

// fatEntryIn reads c's entry in FAT copy fatIndex, reading ahead (for walk
// w) as fatEntryAhead says.
func (v *FS) fatEntryIn(fatIndex int, c, ahead uint32, w *fatWalk) (uint32, error) {
	off := v.g.fatEntryOffset(fatIndex, c)
	ss := int64(v.g.sectorSize)
	sec, in := off/ss, int(off%ss)
	if ahead > 0 && w != nil && !v.cache.Cached(sec) {
		last := min(c+ahead, v.g.clusters+1)
		hi := v.g.fatEntryOffset(fatIndex, last)/ss + 1
		hi = min(hi, sec+max(1, 64<<10/ss), v.g.reserved+int64(fatIndex+1)*v.g.fatSectors)
		// Not again over a stretch whose read-ahead failed: its bad
		// sector is then met by single reads only.
		if hi-sec > 1 && (sec >= w.aheadHi || hi <= w.aheadLo) && !v.cache.Preload(sec, hi-sec) {
			w.aheadLo, w.aheadHi = sec, hi
		}
	}
	b, err := v.cache.Get(sec)
	if err != nil {
		return 0, err
	}
	defer v.cache.Release(b)
	switch v.g.fatType {
	case fat12:
		lo := b.Data[in]
		var hi byte
		if in+1 < len(b.Data) {
			hi = b.Data[in+1]
		} else {
			b2, err := v.cache.Get(sec + 1)
			if err != nil {
				return 0, err
			}
			hi = b2.Data[0]
			v.cache.Release(b2)
		}
		e := uint32(lo) | uint32(hi)<<8
		if c&1 != 0 {
			return e >> 4, nil
		}
		return e & 0xFFF, nil
	case fat16:
		return uint32(binary.LittleEndian.Uint16(b.Data[in:])), nil
	}
	return binary.LittleEndian.Uint32(b.Data[in:]) & fat32Mask, nil
}

// readableFATs lists the FAT copies cluster chains may be read from, the
// active one first: all of them, unless FAT32 mirroring is off
// (fatgen103 BPB_ExtFlags bit 7), when only the active one is in use.
func (v *FS) readableFATs() []int {
	out := []int{v.activeFAT}
	if v.g.fatType == fat32 && v.bs.ExtFlags&extFlagNoMirror != 0 {
		return out
	}
	for i := range v.g.numFATs {
		if i != v.activeFAT {
			out = append(out, i)
		}
	}
	return out
}

// ErrCorrupt is what every error about an inconsistent file system
// unwraps to: a chain that loops or runs into a free cluster, a directory
// that contains its own ancestor, a file larger than its chain.
var ErrCorrupt = errors.New("file system is corrupt")

// CorruptError describes one inconsistency; Cluster is the cluster where it
// was found (0 if none applies). Its message names the cluster, and the
// *fs.PathError around it names the file.
type CorruptError struct {
	Cluster uint32
	Msg     string
}

func (e *CorruptError) Error() string { return e.Msg }
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

func corruptf(cluster uint32, format string, args ...any) error {
	return &CorruptError{Cluster: cluster, Msg: fmt.Sprintf(format, args...)}
}

// clusterSet is a sparse bit set of cluster numbers, used to detect loops
// in a chain. Its memory grows with the chain, never with the volume.
type clusterSet map[uint32]*[64]uint64 // 4096 clusters per page

// add inserts c and reports whether it was already there.
func (s clusterSet) add(c uint32) bool {
	p := s[c>>12]
	if p == nil {
		p = new([64]uint64)
		s[c>>12] = p
	}
	w, bit := (c>>6)&63, uint64(1)<<(c&63)
	had := p[w]&bit != 0
	p[w] |= bit
	return had
}

// run is a stretch of contiguous clusters of a chain: clusters start,
// start+1, … start+n-1 are the chain's clusters idx … idx+n-1.
type run struct {
	idx, start, n uint32
}

// chain is a cluster chain, walked lazily as far as a reader needs it and
// remembered as runs of contiguous clusters, so that sequential and random
// reads cost no more FAT lookups than the first pass did. It is safe for
// concurrent use.
type chain struct {
	v     *FS
	first uint32
	limit uint32 // the most clusters the owner can use; the walk stops there

	mu     sync.Mutex
	runs   []run
	walked uint32 // clusters in runs
	last   uint32 // last cluster appended
	done   bool   // the chain ended (end-of-chain, or limit reached)
	err    error  // sticky corruption error
	seen   clusterSet
	// upto is how many clusters the walk under way wants known: the FAT
	// is read ahead for the entries up to there (fatEntryAhead).
	upto uint32
	walk fatWalk // the FAT's failures met by this walk
}

func (v *FS) newChain(first uint32, limit int64) *chain {
	if limit > int64(v.g.clusters) {
		limit = int64(v.g.clusters) // a chain can never be longer
	}
	if limit < 0 {
		limit = 0
	}
	return &chain{v: v, first: first, limit: uint32(limit), seen: clusterSet{}}
}

// errChainEnd is returned by extend when the chain ends before the asked
// cluster; the caller turns it into a message about its own object.
var errChainEnd = errors.New("end of cluster chain")

// extend walks the chain until it holds more than idx clusters.
func (c *chain) extend(idx uint32) error {
	for c.walked <= idx {
		if c.err != nil {
			return c.err
		}
		if c.done {
			return errChainEnd
		}
		if c.walked >= c.limit {
			c.done = true
			continue
		}
		if c.walked == 0 {
			if err := c.add(c.first, 0); err != nil {
				return err
			}
			continue
		}
		var ahead uint32
		if c.upto > c.walked+1 {
			ahead = c.upto - c.walked - 1
		}
		e, err := c.v.fatEntryAhead(c.last, ahead, &c.walk)
		if err != nil {
			return err // a device error: not sticky, a later read may succeed
		}
		switch c.v.g.classify(e) {
		case entNext:
			if err := c.add(e, c.last); err != nil {
				return err
			}
		case entEOC:
			c.done = true
		case entFree:
			c.err = corruptf(c.last, "cluster %d in the cluster chain is marked free", c.last)
		case entBad:
			c.err = corruptf(c.last, "cluster %d in the cluster chain is marked bad", c.last)
		default:
			c.err = corruptf(c.last, "cluster %d in the cluster chain points to invalid cluster %d", c.last, e)
		}
	}
	return nil
}

// add appends cluster cl (reached from prev, 0 for the first).
func (c *chain) add(cl, prev uint32) error {
	if !c.v.g.validCluster(cl) {
		if prev == 0 {
			c.err = corruptf(cl, "first cluster %d is outside the volume (clusters 2..%d)", cl, c.v.g.clusters+1)
		} else {
			c.err = corruptf(prev, "cluster %d in the cluster chain points to invalid cluster %d", prev, cl)
		}
		return c.err
	}
	if c.seen.add(cl) {
		c.err = corruptf(cl, "cluster chain loops at cluster %d", cl)
		return c.err
	}
	if n := len(c.runs); n > 0 && c.runs[n-1].start+c.runs[n-1].n == cl {
		c.runs[n-1].n++
	} else {
		c.runs = append(c.runs, run{idx: c.walked, start: cl, n: 1})
	}
	c.walked++
	c.last = cl
	return nil
}

// locate returns the cluster that holds the chain's cluster idx and how
// many clusters from there on are contiguous on the medium, walking the
// chain as far as needed: on through the run that holds idx until want
// clusters from idx are known (or the run or the chain ends), so that a
// caller reading want clusters of a contiguous file gets them as one run,
// not one cluster per call. It returns errChainEnd when the chain is
// shorter than idx.
func (c *chain) locate(idx, want uint32) (cluster, contiguous uint32, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.upto = idx + max(want, 1)
	if c.upto < idx { // wrapped
		c.upto = ^uint32(0)
	}
	if err := c.extend(idx); err != nil {
		return 0, 0, err
	}
	i := sort.Search(len(c.runs), func(i int) bool { return c.runs[i].idx > idx }) - 1
	for i == len(c.runs)-1 && c.runs[i].n-(idx-c.runs[i].idx) < want && !c.done && c.err == nil {
		if c.extend(c.walked) != nil {
			// The chain ends or cannot be followed further: what is
			// known serves now; the next call meets the error itself.
			break
		}
	}
	r := c.runs[i]
	return r.start + (idx - r.idx), r.n - (idx - r.idx), nil
}

// verifyEnd checks the FAT entry of the chain's cluster idx, the last one
// its owner uses: it must continue the chain or end it, not say free, bad
// or reserved (fastfat's FatLookupFileAllocation rule).
func (c *chain) verifyEnd(idx uint32) error {
	cl, _, err := c.locate(idx, 1)
	if err != nil {
		return err
	}
	e, err := c.v.fatEntry(cl)
	if err != nil {
		return err
	}
	switch c.v.g.classify(e) {
	case entFree:
		return corruptf(cl, "cluster %d in the cluster chain is marked free", cl)
	case entBad:
		return corruptf(cl, "cluster %d in the cluster chain is marked bad", cl)
	case entReserved:
		return corruptf(cl, "cluster %d in the cluster chain points to invalid cluster %d", cl, e)
	}
	return nil
}

// length walks the whole chain (up to its limit) and returns its number of
// clusters.
func (c *chain) length() (uint32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.upto = c.limit
	for !c.done {
		if err := c.extend(c.walked); err != nil {
			if err == errChainEnd {
				break
			}
			return c.walked, err
		}
	}
	return c.walked, nil
}
