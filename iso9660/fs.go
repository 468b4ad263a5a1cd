package iso9660

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mediafs/mediafs/cache"
	"github.com/mediafs/mediafs/device"
)

// Options control how a volume is read.
type Options struct {
	// Namespace is "" (automatic: Rock Ridge, else Joliet, else ISO 9660
	// names), "rr", "joliet" or "iso". Asking for one the medium does not
	// carry is an error.
	Namespace string
	// Session is the first 2048-byte sector of the session to read (Linux
	// sbsector=): the volume descriptors are at (Session+16)·2048. Extents
	// stay absolute.
	Session int64
	// CacheBlocks is the number of 2048-byte metadata blocks kept cached;
	// 0 means defaultCacheBlocks.
	CacheBlocks int
}

const defaultCacheBlocks = 1024

// Info describes a volume.
type Info struct {
	Label, JolietLabel, SystemID, VolumeSetID, Publisher, Preparer, Application string

	BlockSize    int   // logical block size from the PVD
	VolumeBlocks int64 // volume space size in logical blocks
	Size         int64 // VolumeBlocks*BlockSize

	Joliet, RockRidge, ElTorito bool
	JolietLevel                 int
	Namespace                   string // the one in use: "rr", "joliet", "iso"

	Created, Modified time.Time // zero when unset

	Boot     []BootEntry
	Warnings []string
}

// BootEntry is one El Torito boot catalog entry.
type BootEntry struct {
	Index       int
	Platform    string // "x86", "PowerPC", "Mac", "EFI" or "0xNN"
	Bootable    bool
	Emulation   string // "none", "1.2M floppy", "1.44M floppy", "2.88M floppy", "hard disk"
	LoadSegment uint16
	SystemType  uint8
	SectorCount uint16 // 512-byte virtual sectors
	LoadRBA     uint32 // 2048-byte sectors
	// Size is the number of bytes Boot yields: the floppy size for floppy
	// emulation; for hard-disk emulation the end of the image's MBR partition
	// if sane, else SectorCount·512; for no emulation the size of a file in
	// the tree whose extent starts at LoadRBA, else SectorCount·512 (512
	// when the count is 0). Clipped to the medium.
	Size int64
}

// Extent is one section of a file.
type Extent struct {
	Block  int64 // logical block where the data starts (extended attribute record skipped)
	Length int64 // data bytes in the section
	Unit   int   // interleaving: file unit size in logical blocks (0: not interleaved)
	Gap    int   // interleaving: gap size in logical blocks
}

// Sys is what FileInfo.Sys returns.
type Sys struct {
	Alloc    int64  // bytes allocated: sections, the last rounded up to the logical block
	Ino      uint64 // RR PX serial number, else the directory record's byte position
	UID, GID uint32
	HasOwner bool // UID and GID come from RR PX
	Nlink    uint32

	Rdev               uint64 // major<<32 | minor, RR PN
	DevMajor, DevMinor uint32

	Extents      []Extent
	Atime, Ctime time.Time // RR TF, zero when absent

	Hidden, Associated bool
	// Compressed is set for zisofs files, whose size is the uncompressed
	// size and whose Extents hold the compressed bytes.
	Compressed bool
}

// ErrCorrupt is what CorruptError unwraps to.
var ErrCorrupt = errors.New("corrupt file system")

// CorruptError reports damaged metadata at a byte offset of the medium.
type CorruptError struct {
	Offset int64 // byte offset on the medium
	What   string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("corrupt metadata at byte %d (sector %d): %s", e.Offset, byteToSector(e.Offset), e.What)
}
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// slashPath is how messages show an io/fs path: with a leading slash, the
// root as "/".
func slashPath(name string) string {
	if name == "." {
		return "/"
	}
	return "/" + name
}

func corrupt(off int64, format string, a ...any) error {
	return &CorruptError{Offset: off, What: fmt.Sprintf(format, a...)}
}

// FS is an ISO 9660 volume. It is safe for concurrent use.
type FS struct {
	dev   device.Device
	c     *cache.Cache
	g     geometry
	ns    string // "rr", "joliet", "iso"
	lenSk int    // SUSP LEN_SKP from the root's SP entry
	root  *node
	info  Info

	mu       sync.Mutex
	warnings []string
	dirs     map[int64]*dirListing
	dirNodes int // nodes held in dirs

	boot     []BootEntry
	bootOnce sync.Once

	// Set while mounting, read-only afterwards.
	noPrimary bool     // the primary descriptor is unreadable: the Joliet one stands in
	regions   []region // metadata on the medium, for Damage
	pvd, svd  *volumeDescriptor
}

// Probe reports whether the device holds an ISO 9660 volume descriptor at
// sector session+16.
func Probe(d device.Device, session int64) bool {
	if session < 0 || d.SectorSize() > sectorSize || sectorToByte(session+17) > d.Size() {
		return false
	}
	b := make([]byte, sectorSize)
	// An unreadable first descriptor does not hide the volume: the next
	// readable sector of the set decides (bounded as the mount's scan is).
	for i := int64(0); i < maxBadDescriptors && sectorToByte(session+17+i) <= d.Size(); i++ {
		if _, err := d.ReadAt(b, sectorToByte(session+16+i)); err != nil {
			if device.IsMediaError(err) {
				continue
			}
			return false
		}
		_, err := decodeVolumeDescriptor(b)
		return err == nil
	}
	return false
}

func (f *FS) warn(format string, a ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.warnings) < 100 {
		f.warnings = append(f.warnings, fmt.Sprintf(format, a...))
	}
}

// Open reads the volume descriptors of an ISO 9660 volume on d, whose
// sector size must be 2048.
func Open(d device.Device, opts Options) (*FS, error) {
	if d.SectorSize() != sectorSize {
		return nil, fmt.Errorf("iso9660: device sector size is %d, want %d", d.SectorSize(), sectorSize)
	}
	if opts.Session < 0 || opts.Session > d.Size()/sectorSize {
		return nil, fmt.Errorf("iso9660: session start %d is outside the %d-sector medium", opts.Session, d.Size()/sectorSize)
	}
	switch opts.Namespace {
	case "", "rr", "joliet", "iso":
	default:
		return nil, fmt.Errorf("iso9660: unknown namespace %q (want rr, joliet or iso)", opts.Namespace)
	}
	n := opts.CacheBlocks
	if n <= 0 {
		n = defaultCacheBlocks
	}
	f := &FS{dev: d, c: cache.New(d, sectorSize, n), dirs: make(map[int64]*dirListing)}
	if err := f.mount(opts); err != nil {
		return nil, err
	}
	return f, nil
}

// maxBadDescriptors bounds the unreadable sectors the descriptor scan goes
// past before it gives up.
const maxBadDescriptors = 8

// readVolumeDescriptors scans the descriptor set (ECMA-119 6.2.1, 8.3). A
// descriptor sector that cannot be read is skipped with a warning, so that
// a medium whose primary descriptor is unreadable can still be read through
// its Joliet descriptor; the first such error is returned as badErr.
func (f *FS) readVolumeDescriptors(session int64) (pvd, svd *volumeDescriptor, boot *volumeDescriptor, err error) {
	var badErr error
	bad, read := 0, 0
	var unreadable []int64
	lastRead := int64(-1) // the last sector that held a descriptor
	for i := int64(0); i < maxVolumeDescriptors; i++ {
		sec := session + 16 + i
		if sectorToByte(sec+1) > f.dev.Size() {
			break
		}
		buf := make([]byte, sectorSize)
		if _, err := f.c.ReadAt(buf, sectorToByte(sec)); err != nil {
			if !device.IsMediaError(err) {
				return nil, nil, nil, fmt.Errorf("iso9660: reading volume descriptor: %w", err)
			}
			if badErr == nil {
				badErr = err
			}
			f.warn("volume descriptor: %v", err)
			unreadable = append(unreadable, sec)
			if bad++; bad >= maxBadDescriptors {
				break
			}
			continue
		}
		vd, derr := decodeVolumeDescriptor(buf)
		if derr != nil {
			if read == 0 && bad == 0 {
				return nil, nil, nil, fmt.Errorf("iso9660: sector %d: %v", sec, derr)
			}
			f.warn("volume descriptor set ends without a terminator at sector %d", sec)
			break
		}
		read++
		lastRead = sec
		f.addRegion(vdName(vd), device.Range{Off: sectorToByte(sec), Len: sectorSize}, nil)
		if vd.Type == vdTerminator {
			break
		}
		switch vd.Type {
		case vdPrimary:
			if pvd == nil {
				pvd = vd
			}
		case vdSupplementary:
			if svd == nil && vd.Version == 1 && vd.jolietLevel() > 0 {
				svd = vd
			}
		case vdBootRecord:
			if boot == nil && vd.isElTorito() {
				boot = vd
			}
		}
		if i == maxVolumeDescriptors-1 {
			f.warn("no volume descriptor set terminator in the first %d descriptors", maxVolumeDescriptors)
		}
	}
	// Unreadable sectors before a readable descriptor were descriptors; of
	// those after the last one, only the first is claimed (where the
	// terminator must be): what follows may be anything.
	for i, sec := range unreadable {
		if i > 0 && sec > lastRead && unreadable[i-1] > lastRead {
			break
		}
		name := fmt.Sprintf("volume descriptor at sector %d", sec)
		if pvd == nil && sec == unreadable[0] {
			// Every volume has one, and no readable sector held it.
			name = "primary volume descriptor"
		}
		f.addRegion(name, device.Range{Off: sectorToByte(sec), Len: sectorSize}, badErr)
	}
	if pvd == nil {
		if badErr != nil {
			if svd != nil {
				f.warn("the primary volume descriptor is unreadable; reading the Joliet tree")
				f.noPrimary = true
				return svd, svd, boot, nil
			}
			return nil, nil, nil, fmt.Errorf("iso9660: no readable primary volume descriptor from sector %d: %w", session+16, badErr)
		}
		return nil, nil, nil, fmt.Errorf("iso9660: no primary volume descriptor from sector %d", session+16)
	}
	return pvd, svd, boot, nil
}

func (f *FS) mount(opts Options) error {
	pvd, svd, boot, err := f.readVolumeDescriptors(opts.Session)
	if err != nil {
		return err
	}
	if !pvd.BlockSizeAgrees {
		return fmt.Errorf("iso9660: logical block size halves disagree (%d little-endian, %d big-endian)", pvd.BlockSize, pvd.BlockSizeBE)
	}
	if !validBlockSize(int(pvd.BlockSize)) {
		return fmt.Errorf("iso9660: unsupported logical block size %d (want 512, 1024 or 2048)", pvd.BlockSize)
	}
	f.g = geometry{blockSize: int64(pvd.BlockSize)}
	info := &f.info
	info.Label = aString(pvd.VolumeID)
	info.SystemID = aString(pvd.SystemID)
	info.VolumeSetID = aString(pvd.VolumeSetID)
	info.Publisher = aString(pvd.Publisher)
	info.Preparer = aString(pvd.Preparer)
	info.Application = aString(pvd.Application)
	if f.noPrimary { // the Joliet descriptor's identifiers are UCS-2
		info.Label, info.SystemID, info.VolumeSetID = ucs2String(pvd.VolumeID), ucs2String(pvd.SystemID), ucs2String(pvd.VolumeSetID)
		info.Publisher, info.Preparer, info.Application = ucs2String(pvd.Publisher), ucs2String(pvd.Preparer), ucs2String(pvd.Application)
	}
	info.BlockSize = int(pvd.BlockSize)
	info.VolumeBlocks = int64(pvd.VolumeSpaceSize)
	info.Size = f.g.blockToByte(info.VolumeBlocks)
	info.Created, info.Modified = pvd.Created, pvd.Modified
	if info.Size > f.dev.Size() {
		f.warn("the volume claims %d bytes but the medium holds %d", info.Size, f.dev.Size())
	}

	isoRoot, err := decodeRootRecord(pvd.Root)
	if err != nil {
		return fmt.Errorf("iso9660: primary volume descriptor: %v", err)
	}
	var jRoot dirRecord
	if svd != nil {
		if svd.BlockSize != pvd.BlockSize {
			f.warn("Joliet descriptor block size %d differs from the primary's %d; Joliet ignored", svd.BlockSize, pvd.BlockSize)
			svd = nil
		} else if jRoot, err = decodeRootRecord(svd.Root); err != nil {
			f.warn("Joliet root record: %v; Joliet ignored", err)
			svd = nil
		}
	}
	if svd != nil {
		info.Joliet = true
		info.JolietLevel = svd.jolietLevel()
		info.JolietLabel = ucs2String(svd.VolumeID)
	}

	// Rock Ridge: SUSP SP in the root's "." record (SUSP 5.3), or RRIP
	// entries there for media that omit SP.
	rootDot, records, rootErr := f.probeRoot(isoRoot)
	rr := rootDot != nil && (rootDot.sp || rootDot.any)
	if rr {
		f.lenSk = rootDot.lenSkp
	}
	info.RockRidge = rr
	isoEmpty := rootErr == nil && records <= 2

	if f.noPrimary && (opts.Namespace == "rr" || opts.Namespace == "iso") {
		return fmt.Errorf("iso9660: the primary volume descriptor is unreadable, so only the Joliet names can be read, not namespace %q", opts.Namespace)
	}
	switch opts.Namespace {
	case "rr":
		if !rr {
			return errors.New("iso9660: the medium has no Rock Ridge extensions")
		}
		f.ns = "rr"
	case "joliet":
		if svd == nil {
			return errors.New("iso9660: the medium has no Joliet volume descriptor")
		}
		f.ns = "joliet"
	case "iso":
		f.ns = "iso"
	default:
		switch {
		case svd != nil && isoEmpty:
			f.ns = "joliet" // Linux rootdir_empty
		case rr:
			f.ns = "rr"
		case svd != nil:
			f.ns = "joliet"
		default:
			f.ns = "iso"
		}
	}
	info.Namespace = f.ns

	rootRec := isoRoot
	if f.ns == "joliet" {
		rootRec = jRoot
	}
	f.root = &node{
		dir:      true,
		size:     int64(rootRec.DataLen),
		sections: []Extent{{Block: int64(rootRec.Extent) + int64(rootRec.XARLen), Length: int64(rootRec.DataLen)}},
		date:     rootRec.Date,
		flags:    rootRec.Flags,
		recOff:   sectorToByte(opts.Session+16) + 156,
	}
	// The root's own attributes come from its "." record (the copy in the
	// volume descriptor has no system use area, and some writers leave
	// its date unset).
	if dot, st, err := f.dotRecord(f.root.sections[0].Block, 0, f.ns == "rr"); err == nil {
		f.root.date = dot.Date
		f.root.applyRR(st)
	} else {
		f.warn("root directory: %v", err)
	}

	f.pvd, f.svd = pvd, svd
	if f.noPrimary {
		f.pvd = nil
	}
	f.checkPathTable(pvd, isoRoot)
	f.addPathTableRegions()
	if boot != nil {
		info.ElTorito = true
		f.readBootCatalog(int64(boot.BootCatalog))
	}
	return nil
}

// probeRoot reads the Rock Ridge state of the ISO root's "." record and counts
// the root's records up to 3 (for Linux's rootdir_empty rule).
func (f *FS) probeRoot(root dirRecord) (*rrState, int, error) {
	var dot *rrState
	records := 0
	errStop := errors.New("stop")
	ext := int64(root.Extent) + int64(root.XARLen)
	err := f.scanDir(ext, int64(root.DataLen), func(rec dirRecord, off int64) error {
		records++
		if records == 1 {
			st := newRRState()
			// The SP entry sits at the very start of the root's "." system
			// use area (after an XA prefix); LEN_SKP does not apply here.
			f.readSystemUse(rec.SystemUse, 0, off, st)
			dot = st
		}
		if records >= 3 {
			return errStop
		}
		return nil
	})
	if err == errStop {
		err = nil
	}
	if err != nil {
		f.warn("primary root directory: %v", err)
	}
	return dot, records, err
}

// Limits on Rock Ridge continuation areas (SUSP 5.1).
const (
	maxCEAreas    = 32
	maxCELength   = 4 * sectorSize
	maxSUSPTotals = 64 << 10
)

// readSystemUse decodes a record's system use area (after the XA prefix and
// skip bytes) and follows its continuation areas, with bounds on their
// number and total size and a visited set for loops. Problems end up in
// st.problem.
func (f *FS) readSystemUse(su []byte, skip int, recOff int64, st *rrState) {
	su = stripXA(su)
	if skip > len(su) {
		return
	}
	ce, hasCE, stop := st.parseArea(su[skip:])
	visited := map[int64]bool{}
	total := 0
	for n := 0; hasCE && !stop; n++ {
		off := f.g.blockToByte(int64(ce.Block)) + int64(ce.Offset)
		switch {
		case n >= maxCEAreas:
			st.fatal = corrupt(recOff, "more than %d Rock Ridge continuation areas", maxCEAreas)
			return
		case visited[off]:
			st.fatal = corrupt(recOff, "Rock Ridge continuation area loop at byte %d", off)
			return
		case ce.Length == 0:
			return
		case ce.Length > maxCELength || total+int(ce.Length) > maxSUSPTotals:
			st.fatal = corrupt(recOff, "Rock Ridge continuation area of %d bytes is too long", ce.Length)
			return
		case off+int64(ce.Length) > f.dev.Size():
			st.fatal = corrupt(recOff, "Rock Ridge continuation area at byte %d (+%d) is outside the medium", off, ce.Length)
			return
		}
		visited[off] = true
		total += int(ce.Length)
		buf := make([]byte, ce.Length)
		if _, err := f.c.ReadAt(buf, off); err != nil {
			st.note("continuation area: %v", err)
			return
		}
		ce, hasCE, stop = st.parseArea(buf)
	}
}
