package fat

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mediafs/mediafs/device"
)

// Damage is one object that bad areas of the medium hit. For a FAT
// directory, LostEntries counts the 32-byte entry slots in its unreadable
// sectors: every slot may have held an entry (a long name takes several).
type Damage = device.Damage

// maxDamageDepth bounds the directory nesting the damage walk follows (a
// 260-character path holds at most 130 levels).
const maxDamageDepth = 256

// Damage lists what the bad areas of the volume hit: every file whose data
// and every directory whose entries lie (in part) in a bad area, with the
// lost bytes, and the metadata they hit (boot sector, FSInfo and backup
// boot sector, each FAT copy). The FAT12/16 root directory is the
// directory "/". bad holds byte ranges of the volume's device; they are
// widened to whole sectors, the unit the volume is read in.
//
// Damage reads metadata only (FAT entries and directories), never file
// data, and it never reads a sector in bad. Where a FAT sector of the
// active copy is bad it follows cluster chains through another copy that
// mirrors it. It returns warnings for what it found wrong that is not
// damage (a corrupt cluster chain, say).
func (v *FS) Damage(bad []device.Range) ([]Damage, []string) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	w := &damageWalk{v: v, bad: device.Widen(bad, int64(v.g.sectorSize)), seen: clusterSet{},
		// On a sound volume every cluster is in at most one chain; twice
		// that (and some) leaves room for what is merely odd, and bounds
		// the work on a cross-linked or hostile one.
		budget: 2*int64(v.g.clusters) + 1<<20}
	w.metadata()
	w.dir(v.root, "/", 0)
	if w.dropped > 0 {
		w.warn = append(w.warn, fmt.Sprintf("and %d more warnings", w.dropped))
	}
	if w.budget < 0 {
		w.warn = append(w.warn, "the cluster chains and directories are longer in total than the volume allows (cross-linked?); the report stops where the walk did")
	}
	return w.out, w.warn
}

type damageWalk struct {
	v       *FS
	bad     []device.Range // volume bytes, whole sectors, sorted and merged
	out     []Damage
	warn    []string
	seen    clusterSet // directories walked, by first cluster
	budget  int64      // clusters the walk may still visit
	dropped int        // warnings beyond the first 100
}

func (w *damageWalk) warnf(format string, a ...any) {
	if len(w.warn) < 100 {
		w.warn = append(w.warn, fmt.Sprintf(format, a...))
	} else {
		w.dropped++
	}
}

// isBad reports whether volume sector sec is in a bad area.
func (w *damageWalk) isBad(sec int64) bool {
	return device.Overlaps(w.bad, w.v.g.sectorOffset(sec), int64(w.v.g.sectorSize))
}

// region reports a piece of metadata at volume bytes r when it is hit.
func (w *damageWalk) region(name string, r device.Range, note func(lost []device.Range) string) {
	lost := device.LostIn([]device.Range{r}, w.bad)
	if len(lost) == 0 {
		return
	}
	d := Damage{Path: "<" + name + ">", Kind: "metadata", Size: r.Len}
	for _, l := range lost {
		d.Ranges = append(d.Ranges, device.Range{Off: r.Off + l.Off, Len: l.Len})
	}
	if note != nil {
		d.Note = note(d.Ranges)
	}
	w.out = append(w.out, d)
}

// metadata reports the boot sector, FSInfo and backup boot sector, and the
// FAT copies.
func (w *damageWalk) metadata() {
	v, g := w.v, w.v.g
	ss := int64(g.sectorSize)
	sector := func(s int64) device.Range { return device.Range{Off: g.sectorOffset(s), Len: ss} }
	w.region("boot sector", sector(0), func([]device.Range) string {
		if g.fatType == fat32 && v.bs.BkBootSec != 0 {
			return "the backup boot sector holds a copy"
		}
		return "the volume cannot be recognised without it"
	})
	if g.fatType == fat32 {
		if s := int64(v.bs.FSInfo); s >= 1 && s < g.reserved {
			w.region("FSInfo sector", sector(s), func([]device.Range) string {
				return "only a hint (the free cluster count); nothing is lost"
			})
		}
		if s := int64(v.bs.BkBootSec); s >= 1 && s < g.reserved {
			w.region("backup boot sector", sector(s), func([]device.Range) string {
				return "the spare copy of the boot sector is lost"
			})
		}
	}
	copies := v.readableFATs()
	for i := range g.numFATs {
		start := g.sectorOffset(g.reserved + int64(i)*g.fatSectors)
		w.region(fmt.Sprintf("FAT %d", i+1), device.Range{Off: start, Len: g.fatSectors * ss}, func(lost []device.Range) string {
			if !slices.Contains(copies, i) {
				return fmt.Sprintf("not in use: FAT32 mirroring is off and FAT %d is the active copy", v.activeFAT+1)
			}
			// Sector by sector: is there a copy that can stand in?
			var orphaned []device.Range // bytes of the FAT, relative
			for _, l := range lost {
				for rel := l.Off - start; rel < l.End()-start && rel < g.fatBytes(); rel += ss {
					readable := false
					for _, j := range copies {
						other := g.sectorOffset(g.reserved+int64(j)*g.fatSectors) + rel
						if j != i && !device.Overlaps(w.bad, other, ss) {
							readable = true
							break
						}
					}
					if !readable {
						orphaned = device.AppendRange(orphaned, rel, min(ss, g.fatBytes()-rel))
					}
				}
			}
			var clusters []string
			for _, o := range orphaned {
				if lo, hi := g.entriesIn(o.Off, o.Len); lo <= hi {
					clusters = append(clusters, fmt.Sprintf("%d-%d", lo, hi))
				}
			}
			switch {
			case len(clusters) > 0:
				return "no FAT copy can deliver the entries of clusters " + strings.Join(clusters, ", ") +
					": the files whose cluster chains run through them are reported with what cannot be found"
			case len(copies) > 1:
				return "another FAT copy holds the same entries"
			}
			return ""
		})
	}
}

// entriesIn returns the first and last cluster whose FAT entries lie (in
// part) in bytes [off, off+n) of a FAT, clipped to the data clusters.
func (g *geometry) entriesIn(off, n int64) (lo, hi int64) {
	switch g.fatType {
	case fat12:
		lo, hi = off*2/3, ((off+n-1)*2)/3
	case fat16:
		lo, hi = off/2, (off+n-1)/2
	default:
		lo, hi = off/4, (off+n-1)/4
	}
	return max(lo, 2), min(hi, int64(g.clusters)+1)
}

// fatEntryAny reads cluster c's FAT entry from the first copy that can
// deliver it (see fatCopies), never reading a sector in a bad area.
func (w *damageWalk) fatEntryAny(c uint32) (uint32, error) {
	v := w.v
	ss := int64(v.g.sectorSize)
	var first error
	for _, i := range v.readableFATs() {
		off := v.g.fatEntryOffset(i, c)
		if w.isBad(off/ss) || (v.g.fatType == fat12 && w.isBad((off+1)/ss)) {
			if first == nil {
				first = &device.SectorError{Op: "read", Sector: off / ss, Err: device.ErrBadSector}
			}
			continue
		}
		e, err := v.fatEntryIn(i, c, 0, nil)
		if err == nil {
			return e, nil
		}
		if !device.IsMediaError(err) {
			return 0, err
		}
		if first == nil {
			first = err
		}
	}
	return 0, first
}

// chain walks the cluster chain from first, at most limit clusters, and
// returns it as byte ranges of the volume, in chain order. The error says
// why the walk stopped short: a media error (no FAT copy could deliver an
// entry) or corruption.
func (w *damageWalk) chain(first uint32, limit int64) ([]device.Range, error) {
	g := w.v.g
	limit = min(limit, int64(g.clusters))
	seen := clusterSet{}
	var out []device.Range
	cl := first
	for n := int64(0); n < limit; n++ {
		if w.budget--; w.budget < 0 {
			return out, nil
		}
		if !g.validCluster(cl) {
			return out, corruptf(cl, "cluster chain reaches invalid cluster %d", cl)
		}
		if seen.add(cl) {
			return out, corruptf(cl, "cluster chain loops at cluster %d", cl)
		}
		out = device.AppendRange(out, g.clusterOffset(cl), int64(g.clusterSize))
		if n+1 == limit {
			break
		}
		e, err := w.fatEntryAny(cl)
		if err != nil {
			return out, err
		}
		switch g.classify(e) {
		case entNext:
			cl = e
		case entEOC:
			return out, nil
		case entFree:
			return out, corruptf(cl, "cluster %d in the cluster chain is marked free", cl)
		case entBad:
			return out, corruptf(cl, "cluster %d in the cluster chain is marked bad", cl)
		default:
			return out, corruptf(cl, "cluster %d in the cluster chain points to invalid cluster %d", cl, e)
		}
	}
	return out, nil
}

// dir reports directory d when it is hit, and walks its entries.
func (w *damageWalk) dir(d *node, path string, depth int) {
	v, g := w.v, w.v.g
	key := v.dirKey(d)
	if depth > maxDamageDepth || w.budget < 0 || w.seen.add(key) {
		return
	}
	perSector := g.sectorSize / dirEntrySize
	var ext []device.Range
	var chainErr error
	if d.root && g.fatType != fat32 {
		ext = []device.Range{{Off: g.sectorOffset(g.rootStart), Len: int64(g.rootEntries) * dirEntrySize}}
	} else {
		perCluster := int64(g.clusterSize / dirEntrySize)
		ext, chainErr = w.chain(key, (maxDirEntries+perCluster-1)/perCluster)
	}

	// The entries of the readable sectors.
	r := dirReader{v: v, p: dirParser{cp: v.cp, fatType: g.fatType}, isBad: w.isBad}
	var readErr error
	var size int64
	for _, e := range ext {
		size += e.Len
	}
scan:
	for _, e := range ext {
		for off := e.Off; off < e.End(); off += int64(g.sectorSize) {
			slots := int(min(int64(perSector), (e.End()-off)/dirEntrySize))
			stop, err := r.sector(off/int64(g.sectorSize), slots)
			if err != nil {
				readErr = err
			}
			if stop {
				break scan
			}
		}
	}
	if readErr != nil {
		w.warnf("%s: %v", path, readErr)
	}

	lost := device.LostIn(ext, w.bad)
	if len(lost) > 0 || (chainErr != nil && device.IsMediaError(chainErr)) {
		dd := Damage{Path: path, Kind: "dir", Size: size, Ranges: lost}
		for _, l := range lost {
			// Whole sectors, but for the last of a FAT12/16 root whose
			// entries do not fill it.
			dd.LostSectors += (l.Len + int64(g.sectorSize) - 1) / int64(g.sectorSize)
			dd.LostEntries += l.Len / dirEntrySize
		}
		if chainErr != nil && device.IsMediaError(chainErr) {
			dd.Note = fmt.Sprintf("its cluster chain cannot be followed past byte %d (%v): the rest of it, and its length, are unknown", size, chainErr)
		}
		w.out = append(w.out, dd)
	} else if chainErr != nil {
		w.warnf("%s: %v", path, chainErr)
	}

	for _, c := range r.list {
		p := strings.TrimSuffix(path, "/") + "/" + c.name
		if c.isDir() {
			w.dir(c, p, depth+1)
			continue
		}
		w.file(c, p)
	}
}

// file reports file n when it is hit.
func (w *damageWalk) file(n *node, path string) {
	g := w.v.g
	size := int64(n.ent.FileSize)
	if size == 0 || w.budget < 0 {
		return
	}
	first := n.ent.cluster(g.fatType)
	ext, err := w.chain(first, g.clustersFor(size))
	// The data is the chain's first size bytes.
	var mapped int64
	for i := range ext {
		ext[i].Len = min(ext[i].Len, size-mapped)
		mapped += ext[i].Len
		if mapped == size {
			ext = ext[:i+1]
			break
		}
	}
	if w.budget < 0 {
		return // the chain was cut short by the budget, not by damage
	}
	lost := device.LostIn(ext, w.bad)
	d := Damage{Path: path, Kind: "file", Size: size, Ranges: lost}
	switch {
	case err != nil && device.IsMediaError(err):
		d.Ranges = device.AppendRange(d.Ranges, mapped, size-mapped)
		d.Note = fmt.Sprintf("its cluster chain cannot be followed past byte %d: no FAT copy can deliver the entry (%v)", mapped, err)
	case err != nil:
		w.warnf("%s: %v", path, err)
	case mapped < size:
		w.warnf("%s: cluster chain ends after %d bytes, but the file has %d", path, mapped, size)
	}
	if len(d.Ranges) > 0 {
		w.out = append(w.out, d)
	}
}
