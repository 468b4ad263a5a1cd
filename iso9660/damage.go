package iso9660

import (
	"fmt"
	"strings"

	"github.com/mediafs/mediafs/device"
)

// DirDamageError reports a directory some of whose sectors could not be
// read (see device.DirDamageError). The records of its other sectors are
// listed all the same: a directory record never crosses a logical sector
// (ECMA-119 6.8.1.1), so every readable sector holds whole records.
type DirDamageError = device.DirDamageError

// region is a piece of metadata on the medium, recorded while mounting, for
// Damage.
type region struct {
	name string       // e.g. "primary volume descriptor"
	r    device.Range // bytes on the medium
	err  error        // why it could not be read; nil when it was read
}

func (f *FS) addRegion(name string, r device.Range, err error) {
	if r.Len <= 0 || len(f.regions) >= 256 {
		return
	}
	f.regions = append(f.regions, region{name: name, r: r, err: err})
}

// vdName names a volume descriptor by its type (ECMA-119 8.1.1).
func vdName(vd *volumeDescriptor) string {
	switch vd.Type {
	case vdPrimary:
		return "primary volume descriptor"
	case vdSupplementary:
		if vd.jolietLevel() > 0 {
			return "Joliet volume descriptor"
		}
		return "supplementary volume descriptor"
	case vdBootRecord:
		if vd.isElTorito() {
			return "El Torito boot record"
		}
		return "boot record"
	case vdPartition:
		return "volume partition descriptor"
	case vdTerminator:
		return "volume descriptor set terminator"
	}
	return fmt.Sprintf("volume descriptor of type %d", vd.Type)
}

// addPathTableRegions records the path tables (ECMA-119 9.4) that the
// primary and the Joliet descriptor point at: type L and M, and their
// optional copies. Their size is PathTableSize (8.4.13), clipped to the
// medium.
func (f *FS) addPathTableRegions() {
	add := func(vd *volumeDescriptor, prefix string) {
		if vd == nil || vd.PathTableSize == 0 {
			return
		}
		for _, t := range []struct {
			name string
			loc  uint32
		}{{"L path table", vd.LTable}, {"optional L path table", vd.OptLTable}, {"M path table", vd.MTable}, {"optional M path table", vd.OptMTable}} {
			off := f.g.blockToByte(int64(t.loc))
			if t.loc == 0 || off >= f.dev.Size() {
				continue
			}
			f.addRegion(prefix+t.name, device.Range{Off: off, Len: min(int64(vd.PathTableSize), f.dev.Size()-off)}, nil)
		}
	}
	add(f.pvd, "")
	if f.svd != nil && f.svd != f.pvd {
		add(f.svd, "Joliet ")
	}
}

// Damage is one object that bad areas of the medium hit. For an ISO 9660
// directory, LostSectors counts unreadable 2048-byte sectors, and
// LostEntries the most directory records they can have held (one per 34
// bytes, the smallest record, ECMA-119 9.1).
type Damage = device.Damage

// minRecordLen is the length of the smallest directory record (ECMA-119
// 9.1: 33 bytes and a one-byte identifier).
const minRecordLen = 34

// maxDamageDepth bounds the directory nesting the damage walk follows.
const maxDamageDepth = 256

// Damage lists what the bad areas of the medium hit: every file whose data
// and every directory whose records lie (in part) in a bad area, with the
// lost bytes, and the metadata they hit (volume descriptors, path tables,
// the El Torito boot catalog and boot images, and the directories of the
// other name space's tree). bad holds byte ranges of the device; they are
// widened to whole 2048-byte sectors, the unit the medium is read in. It
// also returns warnings for what it found wrong that is not damage (a
// corrupt directory, say).
//
// Damage reads metadata only (directories), never file data. The volume
// must have been opened over a device on which the bad areas cannot be
// read (device.NewMapped does that for a ddrescue mapfile), so that nothing
// a rescue left in their place is taken for metadata.
func (f *FS) Damage(bad []device.Range) ([]Damage, []string) {
	bad = device.Widen(bad, sectorSize)
	var out []Damage
	var warn []string
	for _, r := range f.regions {
		lost := device.LostIn([]device.Range{r.r}, bad)
		if len(lost) == 0 && r.err == nil {
			continue
		}
		d := Damage{Path: "<" + r.name + ">", Kind: "metadata", Size: r.r.Len, Note: f.regionNote(r)}
		for _, l := range lost {
			d.Ranges = append(d.Ranges, device.Range{Off: r.r.Off + l.Off, Len: l.Len})
		}
		if len(d.Ranges) == 0 {
			d.Ranges = []device.Range{r.r}
		}
		out = append(out, d)
	}
	for _, b := range f.bootImages() {
		if lost := device.LostIn([]device.Range{b.r}, bad); len(lost) > 0 {
			d := Damage{Path: "<" + b.name + ">", Kind: "metadata", Size: b.r.Len, Note: "El Torito boot image: the medium may not boot"}
			for _, l := range lost {
				d.Ranges = append(d.Ranges, device.Range{Off: b.r.Off + l.Off, Len: l.Len})
			}
			out = append(out, d)
		}
	}
	out = append(out, f.otherTreeDamage(bad)...)

	visited := map[int64]bool{}
	budget := f.walkBudget()
	dropped := 0 // warnings beyond the first 100
	var walk func(d *node, path string, depth int)
	walk = func(d *node, path string, depth int) {
		key := d.sections[0].Block
		if visited[key] || depth > maxDamageDepth || budget.spend(d.size) {
			return
		}
		visited[key] = true
		if dd, ok := f.dirDamage(d, path, bad); ok {
			out = append(out, dd)
		}
		l := f.list(d, false)
		if l.err != nil && !l.damaged {
			if len(warn) < 100 {
				warn = append(warn, fmt.Sprintf("%s: %v", path, l.err))
			} else {
				dropped++
			}
		}
		for _, c := range l.nodes {
			p := strings.TrimSuffix(path, "/") + "/" + c.name
			if c.dir {
				walk(c, p, depth+1)
				continue
			}
			if fd, ok := f.fileDamage(c, p, bad, budget); ok {
				out = append(out, fd)
			}
		}
	}
	walk(f.root, "/", 0)
	if dropped > 0 {
		warn = append(warn, fmt.Sprintf("and %d more warnings", dropped))
	}
	if budget.left < 0 {
		warn = append(warn, "the directories and files claim more of the medium in total than it holds (overlapping extents?); the report stops where the walk did")
	}
	return out, warn
}

// workBudget bounds a walk over a medium, in bytes: the directories it
// reads and the file extents it maps may add up to twice the medium (and
// some), which a sound volume never needs (hard links aside, no two
// objects share a byte) and a hostile one (overlapping directories,
// interleaved files of a few bytes per gap) cannot stretch.
type workBudget struct{ left int64 }

func (f *FS) walkBudget() *workBudget { return &workBudget{left: 2*f.dev.Size() + 64<<20} }

// spend takes n units and reports whether the budget is exhausted.
func (b *workBudget) spend(n int64) bool {
	b.left -= max(n, 1)
	return b.left < 0
}

// regionNote says what the loss of a metadata region costs.
func (f *FS) regionNote(r region) string {
	switch {
	case r.name == "primary volume descriptor" && f.noPrimary:
		return "unreadable: the ISO 9660 and Rock Ridge names are lost; the Joliet tree is read instead"
	case r.name == "primary volume descriptor":
		return "unreadable: the file tree cannot be found"
	case strings.HasPrefix(r.name, "volume descriptor at sector"):
		return "unreadable: what it described (a Joliet tree, a boot record) is not used"
	case strings.Contains(r.name, "path table"):
		return "a copy of the directory hierarchy that some systems (DOS, Windows) look directories up in; mediafs reads the directories themselves"
	case r.name == "El Torito boot catalog":
		return "the boot entries it holds (or those past the unreadable sector) are lost: the medium may not boot"
	case strings.HasSuffix(r.name, "volume descriptor") || strings.Contains(r.name, "boot record"):
		return "unreadable"
	}
	return ""
}

// bootImages returns the El Torito boot images as named regions.
func (f *FS) bootImages() []region {
	f.computeBootSizes()
	var out []region
	for _, b := range f.boot {
		off := sectorToByte(int64(b.LoadRBA))
		if b.Size > 0 && off < f.dev.Size() {
			out = append(out, region{name: fmt.Sprintf("El Torito boot image %d", b.Index+1), r: device.Range{Off: off, Len: b.Size}})
		}
	}
	return out
}

// dirDamage reports directory d when a bad area hits its extent.
func (f *FS) dirDamage(d *node, path string, bad []device.Range) (Damage, bool) {
	start := f.g.blockToByte(d.sections[0].Block)
	ext := []device.Range{{Off: start, Len: max(0, min(d.size, f.dev.Size()-start))}}
	lost := device.LostIn(ext, bad)
	if len(lost) == 0 {
		return Damage{}, false
	}
	dd := Damage{Path: path, Kind: "dir", Size: d.size, Ranges: lost}
	// The sectors of the lost bytes (whole sectors, but for a directory
	// that starts or ends mid-sector), and the records they can hold.
	for _, l := range lost {
		lo, hi := start+l.Off, start+l.End()
		for sec := sectorFloor(lo); sec < hi; sec += sectorSize {
			dd.LostSectors++
			dd.LostEntries += (min(sec+sectorSize, hi) - max(sec, lo)) / minRecordLen
		}
	}
	return dd, true
}

// fileDamage reports file n when a bad area hits its data.
func (f *FS) fileDamage(n *node, path string, bad []device.Range, budget *workBudget) (Damage, bool) {
	if n.rawSize == 0 || n.isLink || (n.hasPX && !n.fileMode().IsRegular()) {
		return Damage{}, false
	}
	var ext []device.Range
	for pos := int64(0); pos < n.rawSize; {
		disk, run, ok := f.mapOffset(n, pos)
		if !ok || run <= 0 {
			break
		}
		k := min(run, n.rawSize-pos)
		// A run costs its bytes, and at least the smallest logical block
		// it takes on the medium, so that tiny sections or units cannot
		// stretch the walk.
		if budget.spend(max(k, 512)) {
			break
		}
		ext = device.AppendRange(ext, disk, k)
		pos += k
	}
	lost := device.LostIn(ext, bad)
	if len(lost) == 0 {
		return Damage{}, false
	}
	d := Damage{Path: path, Kind: "file", Size: n.size, Ranges: lost}
	if n.zf != nil {
		// The lost bytes are compressed ones; which uncompressed bytes
		// they held needs the block table, which may itself be lost.
		d.Ranges = []device.Range{{Off: 0, Len: n.size}}
		d.Note = "zisofs-compressed: the whole file is counted as lost"
	}
	if n.err != nil {
		d.Note = n.err.Error()
	}
	return d, true
}

// otherTreeDamage reports the directories of the tree of the name space
// not in use (Joliet when Rock Ridge or ISO names are read, the ISO tree
// when Joliet is) that bad areas hit: a reader of that tree loses entries
// there. Files are shared between the trees and reported once, by Damage.
func (f *FS) otherTreeDamage(bad []device.Range) []Damage {
	var root dirRecord
	var label string
	var joliet bool
	switch {
	case f.ns != "joliet" && f.svd != nil && f.svd != f.pvd:
		r, err := decodeRootRecord(f.svd.Root)
		if err != nil {
			return nil
		}
		root, label, joliet = r, "Joliet directory", true
	case f.ns == "joliet" && f.pvd != nil:
		r, err := decodeRootRecord(f.pvd.Root)
		if err != nil {
			return nil
		}
		root, label = r, "ISO 9660 directory"
	default:
		return nil
	}
	var out []Damage
	visited := map[int64]bool{}
	dirs := 0
	budget := f.walkBudget()
	var walk func(ext, size int64, path string, depth int)
	walk = func(ext, size int64, path string, depth int) {
		if visited[ext] || depth > maxDamageDepth || dirs >= maxCachedNodes || budget.spend(size) {
			return
		}
		visited[ext] = true
		dirs++
		start := f.g.blockToByte(ext)
		if lost := device.LostIn([]device.Range{{Off: start, Len: max(0, min(size, f.dev.Size()-start))}}, bad); len(lost) > 0 {
			d := Damage{Path: "<" + label + " " + path + ">", Kind: "metadata", Size: size,
				Note: "a directory of the tree of the other name space: a reader of that tree loses entries here"}
			for _, l := range lost {
				d.Ranges = append(d.Ranges, device.Range{Off: start + l.Off, Len: l.Len})
			}
			out = append(out, d)
		}
		type sub struct {
			ext, size int64
			name      string
		}
		var subs []sub
		f.scanDirTolerant(ext, size, func(rec dirRecord, off int64) error {
			if isDotRecord(rec.Name) || rec.Flags&flagDirectory == 0 {
				return nil
			}
			name := stripVersion(latin1(rec.Name), true)
			if joliet {
				name = stripVersion(ucs2String(rec.Name), false)
			}
			subs = append(subs, sub{int64(rec.Extent) + int64(rec.XARLen), int64(rec.DataLen), name})
			return nil
		}, func(int64, int64, error) {})
		for _, s := range subs {
			walk(s.ext, s.size, strings.TrimSuffix(path, "/")+"/"+s.name, depth+1)
		}
	}
	walk(int64(root.Extent)+int64(root.XARLen), int64(root.DataLen), "/", 0)
	return out
}
