package fat

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/text/encoding/charmap"

	"github.com/mediafs/mediafs/cache"
	"github.com/mediafs/mediafs/device"
)

// Options control how a volume is read.
type Options struct {
	// CodePage is the OEM code page of 8.3 names and labels: 437 (the
	// default), 850, 852, 855, 858, 860, 862, 863, 865, 866, 874, 1250,
	// 1251 or 1252.
	CodePage int
	// Location is the time zone FAT's zone-less times are read in; nil
	// means UTC.
	Location *time.Location
	// CacheBlocks is the number of sectors the metadata cache keeps; 0
	// means 1024.
	CacheBlocks int
	// Writable mounts the volume read-write. Without it every change fails
	// with an error wrapping ErrReadOnlyFS (and fs.ErrPermission), and
	// nothing at all is written to the device.
	Writable bool
	// WriteThrough writes every change's metadata to the medium before
	// the call returns. By default the metadata of growing changes
	// (creating, writing, extending, mkdir, times) is kept in the cache
	// and written in ordered batches (every FAT copy first, then the
	// directories) at Sync, Close, before any change that frees or moves
	// something, and whenever 2 MiB are pending. Either way a crash
	// leaves at worst lost clusters; write-back loses more of the work of
	// the moments before it.
	WriteThrough bool
	// MarkBadClusters marks a cluster that fails a data write with the
	// bad-cluster value (0xFF7, 0xFFF7, 0x0FFFFFF7) so that it is never
	// allocated again, as Windows and fsck do. It is for real block
	// devices, whose bad sectors stay bad; an image file's "bad sector"
	// is a fault of the moment.
	MarkBadClusters bool
}

// Info describes a mounted volume.
type Info struct {
	Type      string // "fat12", "fat16" or "fat32"
	Label     string // the root directory's volume-label entry ("" if none)
	BootLabel string // the boot sector's label field ("" if blank or "NO NAME")
	Serial    uint32
	OEMName   string

	SectorSize  int   // bytes per sector (BPB)
	ClusterSize int   // bytes per cluster
	Clusters    int64 // clusters in the data area
	Size        int64 // bytes of the whole volume as the BPB declares it (TotSec × BytsPerSec)
	Free        int64 // bytes in free clusters, counted in the FAT; -1 if the FAT could not be read

	Dirty      bool // the boot sector's state byte or FAT[1] says the volume was not cleanly unmounted
	HardError  bool // FAT[1] says a disk I/O error was seen
	FATs       int  // number of FAT copies
	ActiveFAT  int  // the copy read (0-based)
	FATsDiffer bool // the copies are not identical

	Warnings []string // deviations tolerated at mount, and found by the FAT scan
}

// FS is a mounted FAT volume. It is safe for concurrent readers.
type FS struct {
	dev       device.Device
	cache     *cache.Cache
	g         *geometry
	bs        *bootSector
	cp        *charmap.Charmap
	loc       *time.Location
	activeFAT int
	root      *node
	fsinfo    fsInfo
	fsinfoOK  bool

	info Info // the parts known at mount

	scanOnce sync.Once
	scanned  Info // info plus the FAT scan

	dirs dirCache // parsed directories

	// The write side. mu is the volume lock: readers share it, every
	// change holds it exclusively. It is never held while waiting for
	// something the same goroutine holds (Q243415): the internal helpers
	// take no locks, only the exported entry points do.
	mu          sync.RWMutex
	writable    bool
	alloc       allocator
	freedTotal  int64 // clusters freed while the bitmap was not built, since mount
	freedAtScan int64 // the part of freedTotal that Info's first count holds
	freedInHint int64 // the part of freedTotal that FSInfo's free count holds
	dirtyOnDisk bool  // the dirty marks are on the medium
	sticky      bool  // a metadata write failed: never mark clean
	batch       bool  // growing changes leave their metadata for an ordered batch
	markBadCls  bool  // Options.MarkBadClusters
	// Trouble seen by any request (noteErr), and what of it is on the
	// medium (recordTrouble).
	mediaErr      atomic.Bool
	corrupt       atomic.Bool
	troubleMarked bool
	hardMarked    bool
	deferring     bool // the change under way leaves its metadata pending
	// pending are the clusters allocated since the FAT was last written:
	// nothing on the medium refers to them yet, so links from them need
	// no ordering.
	pending map[uint32]struct{}
	now     func() time.Time

	openMu  sync.Mutex
	open    map[int64]*fileState // open files by short-entry offset
	orphans map[*fileState]struct{}
}

// watched is the device of a writable volume, noting media errors.
type watched struct {
	device.Device
	v *FS
}

func (w *watched) ReadAt(p []byte, off int64) (int, error) {
	n, err := w.Device.ReadAt(p, off)
	w.v.noteErr(err)
	return n, err
}

func (w *watched) WriteAt(p []byte, off int64) (int, error) {
	n, err := w.Device.WriteAt(p, off)
	w.v.noteErr(err)
	return n, err
}

// ErrNotDir is returned when a path runs through a file as if it were a
// directory.
var ErrNotDir = errors.New("not a directory")

// Open mounts the FAT volume on d. The BPB's bytes per sector must equal
// d's sector size, or be a multiple of it (as Linux allows); a BPB sector
// smaller than the device's is refused. Open does not take ownership of d:
// Close does not close it.
func Open(d device.Device, opts Options) (*FS, error) {
	cp, err := codePage(opts.CodePage)
	if err != nil {
		return nil, err
	}
	loc := opts.Location
	if loc == nil {
		loc = time.UTC
	}
	bs, warn, err := readBootSector(d)
	if err != nil {
		return nil, err
	}
	if int(bs.BytsPerSec) < d.SectorSize() {
		return nil, fmt.Errorf("logical sector size %d in the boot sector is too small for the device's %d-byte sectors", bs.BytsPerSec, d.SectorSize())
	}
	g, gwarn, err := newGeometry(bs)
	if err != nil {
		return nil, fmt.Errorf("not a usable FAT file system: %w", err)
	}
	warn = append(warn, gwarn...)
	blocks := opts.CacheBlocks
	if blocks <= 0 {
		blocks = 1024
	}
	v := &FS{
		dev:  d,
		g:    g,
		bs:   bs,
		cp:   cp,
		loc:  loc,
		root: &node{root: true, ent: dirEntry{Attr: attrDirectory}},

		writable:   opts.Writable,
		batch:      !opts.WriteThrough,
		markBadCls: opts.MarkBadClusters,
		pending:    make(map[uint32]struct{}),
		now:        time.Now,
		open:       make(map[int64]*fileState),
		orphans:    make(map[*fileState]struct{}),
	}
	if opts.Writable {
		// Every request of a writable volume goes through a watch that
		// notes media errors, so that whichever request meets one, the
		// volume is marked for a disk check (R-FAT-5).
		v.dev = &watched{Device: d, v: v}
	}
	v.cache = cache.New(v.dev, g.sectorSize, blocks)
	if v.dev != d {
		// Read-ahead is a hint: its failures must not mark the volume.
		v.cache.SetHintDevice(d)
	}
	if g.fatType == fat32 {
		v.root.ent.setCluster(g.rootCluster)
	}
	v.info = Info{
		Type:        fmt.Sprintf("fat%d", g.fatType),
		OEMName:     strings.TrimRight(string(bs.OEMName[:]), " \x00"),
		SectorSize:  g.sectorSize,
		ClusterSize: g.clusterSize,
		Clusters:    int64(g.clusters),
		Size:        g.volumeBytes(),
		FATs:        g.numFATs,
	}
	if bs.hasExtBPB() {
		v.info.Serial = bs.VolID
		v.info.Dirty = bs.Reserved1&stateDirty != 0
	}
	if bs.BootSig == extBootSig {
		if l := decodeLabel(cp, bs.VolLab); l != "NO NAME" {
			v.info.BootLabel = l
		}
	}
	if d.Size() < g.volumeBytes() {
		warn = append(warn, fmt.Sprintf("the volume is %d bytes but the medium holds only %d; reads beyond the end will fail", g.volumeBytes(), d.Size()))
	}
	if g.fatType == fat32 {
		if bs.FSVer != 0 {
			warn = append(warn, fmt.Sprintf("FAT32 version %d.%d (only 0.0 is defined)", bs.FSVer>>8, bs.FSVer&0xFF))
		}
		if bs.ExtFlags&extFlagNoMirror != 0 {
			v.activeFAT = int(bs.ExtFlags & extFlagActiveFAT)
			if v.activeFAT >= g.numFATs {
				warn = append(warn, fmt.Sprintf("active FAT %d does not exist; reading FAT 0", v.activeFAT))
				v.activeFAT = 0
			}
		}
		if s := int64(bs.FSInfo); s >= 1 && s < g.reserved {
			if b, err := v.cache.Get(s); err == nil {
				v.fsinfo, v.fsinfoOK = decodeFSInfo(b.Data)
				v.cache.Release(b)
			}
		}
	}
	v.info.ActiveFAT = v.activeFAT
	warn = append(warn, v.checkFATHead()...)
	if l, err := v.rootLabel(); err != nil {
		warn = append(warn, fmt.Sprintf("root directory: %v", err))
	} else {
		v.info.Label = l
	}
	v.info.Warnings = warn
	return v, nil
}

// readBootSector reads and checks sector 0, falling back to the FAT32
// backup boot sector (sector 6) when sector 0 is unreadable or invalid.
func readBootSector(d device.Device) (*bootSector, []string, error) {
	dss := d.SectorSize()
	buf := make([]byte, dss)
	try := func(off int64) (*bootSector, error) {
		if _, err := d.ReadAt(buf, off); err != nil {
			return nil, err
		}
		bs, err := decodeBootSector(buf)
		if err != nil {
			return nil, err
		}
		if err := bs.check(); err != nil {
			return nil, fmt.Errorf("not a FAT file system: %w", err)
		}
		return bs, nil
	}
	bs, err := try(0)
	if err == nil {
		var warn []string
		if bs.Signature != 0xAA55 {
			warn = append(warn, fmt.Sprintf("boot sector signature is 0x%04X, not 0xAA55", bs.Signature))
		}
		if !bs.hasExtBPB() {
			warn = append(warn, "boot sector has no extended boot signature (an old DOS BPB): no serial number or label")
		}
		return bs, warn, nil
	}
	// The backup is at sector 6 in the BPB's unit, which is unknown: try
	// each sector size the device can address.
	for ss := dss; ss <= 4096; ss *= 2 {
		b, berr := try(6 * int64(ss))
		if berr == nil && b.fat32Shape() && b.BkBootSec == 6 && int(b.BytsPerSec) == ss {
			return b, []string{fmt.Sprintf("boot sector (sector 0): %v; using the backup boot sector at sector 6", err)}, nil
		}
	}
	return nil, nil, err
}

// checkFATHead reads FAT[0] and FAT[1]: the media byte, and on FAT16/32
// the clean-shutdown and hard-error bits.
func (v *FS) checkFATHead() []string {
	var warn []string
	e0, err := v.fatEntry(0)
	if err != nil {
		return []string{fmt.Sprintf("FAT: %v", err)}
	}
	if uint8(e0) != v.bs.Media {
		warn = append(warn, fmt.Sprintf("FAT[0] is 0x%X, which does not carry the media byte 0x%02X", e0, v.bs.Media))
	}
	e1, err := v.fatEntry(1)
	if err != nil {
		return append(warn, fmt.Sprintf("FAT: %v", err))
	}
	switch v.g.fatType {
	case fat16:
		v.info.Dirty = v.info.Dirty || e1&fat16ClnShut == 0
		v.info.HardError = e1&fat16HrdErr == 0
	case fat32:
		v.info.Dirty = v.info.Dirty || e1&fat32ClnShut == 0
		v.info.HardError = e1&fat32HrdErr == 0
	}
	return warn
}

// MountWarnings returns what was tolerated at mount, without the FAT scan
// that Info makes.
func (v *FS) MountWarnings() []string { return slices.Clone(v.info.Warnings) }

// Info describes the volume. The first call compares the FAT copies and,
// unless a FAT32 FSInfo sector vouches for it on a cleanly unmounted volume,
// counts the free clusters, reading the FATs in large runs; Open itself
// never scans the FAT, so that opening a 2 TiB volume stays instant.
func (v *FS) Info() Info {
	v.mu.RLock()
	defer v.mu.RUnlock()
	v.scanOnce.Do(func() {
		inf := v.info
		inf.Warnings = slices.Clone(inf.Warnings)
		free, differ, err := v.scanFATs()
		if hint, ok := v.fsinfoFree(); ok {
			if err == nil && hint != free {
				inf.Warnings = append(inf.Warnings, fmt.Sprintf("FSInfo says %d free clusters; the FAT has %d", hint, free))
			}
			free, err = hint, nil
		}
		if err != nil {
			inf.Free = -1
			inf.Warnings = append(inf.Warnings, fmt.Sprintf("counting free clusters: %v", err))
		} else {
			inf.Free = free * int64(v.g.clusterSize)
		}
		// What was freed before this count is in it already: all of it
		// when the FAT was scanned, what FSInfo was last told when its
		// hint was taken.
		if _, hinted := v.fsinfoFree(); hinted {
			v.freedAtScan = v.freedInHint
		} else {
			v.freedAtScan = v.freedTotal
		}
		if differ {
			inf.FATsDiffer = true
			inf.Warnings = append(inf.Warnings, fmt.Sprintf("the FAT copies differ; reading FAT %d", v.activeFAT))
		}
		v.scanned = inf
	})
	inf := v.scanned
	inf.Warnings = slices.Clone(inf.Warnings)
	inf.Label, inf.BootLabel = v.info.Label, v.info.BootLabel
	inf.Dirty = inf.Dirty || v.dirtyOnDisk
	if v.alloc.built {
		inf.Free = v.alloc.free * int64(v.g.clusterSize)
	} else if inf.Free >= 0 {
		inf.Free += (v.freedTotal - v.freedAtScan) * int64(v.g.clusterSize)
	}
	return inf
}

// fsinfoFree returns the FSInfo free count when it can be trusted: the
// sector's three signatures are right, the count is known and possible,
// and the volume was unmounted cleanly (a dirty volume's FSInfo may be
// stale). fatgen103 calls it a hint; Windows trusts it on clean volumes.
func (v *FS) fsinfoFree() (int64, bool) {
	if !v.fsinfoOK || v.info.Dirty || v.fsinfo.FreeCount == 0xFFFFFFFF {
		return 0, false
	}
	if int64(v.fsinfo.FreeCount) > int64(v.g.clusters) {
		return 0, false
	}
	return int64(v.fsinfo.FreeCount), true
}

// scanFATs counts free entries of the active FAT and compares it with the
// other copies. It reads straight from the device, in chunks that hold a
// whole number of entries (and of FAT12 entry pairs).
func (v *FS) scanFATs() (free int64, differ bool, err error) {
	total := v.g.fatBytes()
	chunk := int64(256 << 10)
	if v.g.fatType == fat12 {
		chunk = 3 * 64 << 10
	}
	buf := make([]byte, chunk)
	other := make([]byte, chunk)
	ss := int64(v.dev.SectorSize())
	for pos := int64(0); pos < total; pos += chunk {
		n := min(chunk, total-pos)
		rn := (n + ss - 1) / ss * ss
		base := v.g.fatEntryOffset(v.activeFAT, 0)
		if _, err := v.dev.ReadAt(buf[:rn], base+pos); err != nil {
			return 0, false, err
		}
		free += countFree(v.g, buf[:n], pos)
		for i := 0; i < v.g.numFATs && !differ; i++ {
			if i == v.activeFAT {
				continue
			}
			if _, err := v.dev.ReadAt(other[:rn], v.g.fatEntryOffset(i, 0)+pos); err != nil {
				differ = true // an unreadable copy is not the same copy
				break
			}
			differ = string(other[:n]) != string(buf[:n])
		}
	}
	return free, differ, nil
}

// countFree counts the zero entries for clusters 2..clusters+1 in p, the
// part of a FAT starting at byte pos.
func countFree(g *geometry, p []byte, pos int64) int64 {
	var n int64
	forEachEntry(g, p, pos, func(_ int64, free bool) {
		if free {
			n++
		}
	})
	return n
}

// forEachEntry calls fn for each entry of clusters 2..clusters+1 in p, the
// part of a FAT starting at byte pos (a whole number of FAT12 entry
// pairs), saying whether it is free.
func forEachEntry(g *geometry, p []byte, pos int64, fn func(c int64, free bool)) {
	last := int64(g.clusters) + 1
	visit := func(c int64, free bool) {
		if c >= 2 && c <= last {
			fn(c, free)
		}
	}
	switch g.fatType {
	case fat12:
		c := pos / 3 * 2 // chunks start on an entry pair
		for i := 0; i < len(p); i, c = i+3, c+2 {
			var b [3]byte
			copy(b[:], p[i:])
			visit(c, uint16(b[0])|uint16(b[1]&0x0F)<<8 == 0)
			visit(c+1, uint16(b[1]>>4)|uint16(b[2])<<4 == 0)
		}
	case fat16:
		c := pos / 2
		for i := 0; i+1 < len(p); i, c = i+2, c+1 {
			visit(c, p[i]|p[i+1] == 0)
		}
	default:
		c := pos / 4
		for i := 0; i+3 < len(p); i, c = i+4, c+1 {
			visit(c, p[i]|p[i+1]|p[i+2]|p[i+3]&0x0F == 0)
		}
	}
}

// CacheStats reports the metadata cache's state (pins must be zero
// between operations).
func (v *FS) CacheStats() cache.Stats { return v.cache.Stats() }

// resolve finds the node for an io/fs path, and the keys of the
// directories on the way (the root's first), for cycle detection.
func (v *FS) resolve(name string) (*node, []uint32, error) {
	n := v.root
	anc := []uint32{v.dirKey(v.root)}
	if name == "." {
		return n, anc, nil
	}
	for elem := range strings.SplitSeq(name, "/") {
		if !n.isDir() {
			return nil, nil, ErrNotDir
		}
		if err := v.checkCycle(n, anc); err != nil {
			return nil, nil, err
		}
		if !n.root {
			anc = append(anc, v.dirKey(n))
		}
		// A directory with unreadable sectors is looked into all the
		// same; a name not in its readable part fails with the damage
		// (it may be in the part that was lost), not fs.ErrNotExist.
		pd, err := v.lookupDir(n)
		if pd == nil {
			return nil, nil, err
		}
		c := pd.lookup(elem)
		if c == nil {
			if err != nil {
				return nil, nil, err
			}
			return nil, nil, fs.ErrNotExist
		}
		n = c
	}
	return n, anc, nil
}

// checkCycle refuses to read directory n when it is its own ancestor: a
// subdirectory whose first cluster is that of the root, its parent or any
// directory above (including cluster 0, which means the root).
func (v *FS) checkCycle(n *node, anc []uint32) error {
	if n.root {
		return nil
	}
	k := v.dirKey(n)
	if slices.Contains(anc, k) {
		return corruptf(k, "directory refers back to an ancestor directory at cluster %d", k)
	}
	return nil
}

// pathErr wraps err with the operation and the path as users see it:
// with a leading slash.
func pathErr(op, name string, err error) error {
	if name == "." {
		name = ""
	}
	return &fs.PathError{Op: op, Path: "/" + name, Err: err}
}

// resolveOp checks an io/fs path and resolves it, wrapping every failure
// in a *fs.PathError for op.
func (v *FS) resolveOp(op, name string) (*node, []uint32, error) {
	if !fs.ValidPath(name) {
		return nil, nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	n, anc, err := v.resolve(name)
	if err != nil {
		return nil, nil, pathErr(op, name, err)
	}
	return n, anc, nil
}

// Open opens the named file or directory for reading.
func (v *FS) Open(name string) (fs.File, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	n, anc, err := v.resolveOp("open", name)
	if err != nil {
		return nil, err
	}
	if !n.isDir() {
		return v.openFile(name, n, anc[len(anc)-1], 0), nil
	}
	if err := v.checkCycle(n, anc); err != nil {
		return nil, pathErr("open", name, err)
	}
	return &Dir{v: v, name: name, n: n}, nil
}

// Stat describes the named file or directory.
func (v *FS) Stat(name string) (fs.FileInfo, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	n, _, err := v.resolveOp("stat", name)
	if err != nil {
		return nil, err
	}
	return v.stat(n), nil
}

// ReadDir lists the named directory, sorted by name. A directory some of
// whose sectors cannot be read still yields the entries of its other
// sectors, together with an error that names the directory and the
// unreadable sectors (a *DirDamageError in a *fs.PathError, which matches
// device.ErrBadSector). Such a listing is not cached, so that the medium
// is asked again next time.
func (v *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	n, anc, err := v.resolveOp("readdir", name)
	if err != nil {
		return nil, err
	}
	if !n.isDir() {
		return nil, pathErr("readdir", name, ErrNotDir)
	}
	if err := v.checkCycle(n, anc); err != nil {
		return nil, pathErr("readdir", name, err)
	}
	list, err := v.dirEntries(n)
	slices.SortFunc(list, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	if err != nil {
		return list, pathErr("readdir", name, err)
	}
	return list, nil
}

// dirEntries lists directory n in directory order: all of it, or for a
// directory that could be read only in part, what was read and the damage.
func (v *FS) dirEntries(n *node) ([]fs.DirEntry, error) {
	pd, err := v.dir(n)
	if pd == nil {
		return nil, err
	}
	out := make([]fs.DirEntry, len(pd.list))
	for i, c := range pd.list {
		out[i] = dirEntryInfo{v: v, n: c}
	}
	return out, err
}
