package fat

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mediafs/mediafs/device"
)

// FormatOptions choose the layout Format lays down.
type FormatOptions struct {
	// Type is "fat12", "fat16", "fat32" or "" to choose as mkfs.fat does:
	// FAT32 from 512 MiB, otherwise FAT12 when its cluster count fits,
	// else FAT16.
	Type string
	// ClusterSize is the cluster size in bytes (a power-of-two multiple of
	// the sector size, at most 32 KiB); 0 picks the default (see Format).
	ClusterSize int
	// Label is the volume label (at most 11 OEM characters; stored upper
	// case); "" leaves the volume unlabelled ("NO NAME").
	Label string
	// Serial is the volume serial number when SerialSet; otherwise a
	// random one is drawn from crypto/rand.
	Serial    uint32
	SerialSet bool
	// HiddenSectors is the BPB's HiddSec: the sectors before the volume on
	// its disk (the partition's start), for partitions.
	HiddenSectors uint32
	// OEMName is the boot sector's OEM name; "" means "MEDIAFS ".
	OEMName string
	// Time is the time stamp of the label entry; zero means now.
	Time time.Time
}

// Guard band: Format never makes a volume whose cluster count is within
// this many clusters of a FAT type threshold (4085, 65525), where readers
// disagree about the type (R-FAT-2).
const thresholdGuard = 16

// floppy is a DOS diskette BPB (512-byte sectors).
type floppy struct {
	kib, spt, heads, spc, rootEnt int
	media                         uint8
}

// The standard DOS diskette formats: 5.25" 160K/180K/320K/360K/1.2M,
// 3.5" 720K/1.44M/2.88M. FAT sizes follow from the formula below and
// agree with DOS's (1, 2, 1, 2, 3, 7, 9, 9 sectors).
var floppies = []floppy{
	{160, 8, 1, 1, 64, 0xFE},
	{180, 9, 1, 1, 64, 0xFC},
	{320, 8, 2, 2, 112, 0xFF},
	{360, 9, 2, 2, 112, 0xFD},
	{720, 9, 2, 2, 112, 0xF9},
	{1200, 15, 2, 1, 224, 0xF9},
	{1440, 18, 2, 1, 224, 0xF0},
	{2880, 36, 2, 2, 240, 0xF0},
}

// layout is a planned volume.
type layout struct {
	fatType    int
	ss         int
	spc        int
	total      int64 // sectors
	reserved   int64
	rootEnt    int
	rootSecs   int64
	fatSecs    int64
	clusters   int64
	media      uint8
	spt, heads int
}

// plan computes the FAT size and cluster count for the given type and
// sectors per cluster: the FAT is sized for the most clusters the area
// could hold, then the clusters are counted in what is left.
func (l *layout) plan() {
	avail := l.total - l.reserved - l.rootSecs
	if avail <= 0 {
		l.clusters, l.fatSecs = 0, 1
		return
	}
	upper := avail / int64(l.spc)
	l.fatSecs = fatSectorsFor(l.fatType, upper, l.ss)
	l.clusters = (avail - 2*l.fatSecs) / int64(l.spc)
	if l.clusters < 0 {
		l.clusters = 0
	}
	if m := int64(maxClusters(l.fatType)); l.clusters > m {
		l.clusters = m
	}
}

func fatSectorsFor(fatType int, clusters int64, ss int) int64 {
	n := clusters + 2
	var b int64
	switch fatType {
	case fat12:
		b = (n*3 + 1) / 2
	case fat16:
		b = n * 2
	default:
		b = n * 4
	}
	return (b + int64(ss) - 1) / int64(ss)
}

// inRange reports whether the cluster count suits the type with the guard
// band kept: FAT12 below 4085-16, FAT16 in [4085+16, 65525-16), FAT32
// from 65525+16.
func (l *layout) inRange() bool {
	c := l.clusters
	switch l.fatType {
	case fat12:
		return c >= 1 && c < minFAT16Clusters-thresholdGuard
	case fat16:
		return c >= minFAT16Clusters+thresholdGuard && c < minFAT32Clusters-thresholdGuard
	}
	return c >= minFAT32Clusters+thresholdGuard && c <= maxFAT32Clusters-thresholdGuard
}

// Format lays a new, empty FAT file system over the whole of d, whose
// sector size is the bytes per sector. It writes the reserved sectors
// (boot sector, and on FAT32 the FSInfo sector, the backup boot sector at
// 6 and backup FSInfo at 7), every FAT copy and the root directory; the
// data area is left as it is.
//
// The defaults follow mkfs.fat 4.2:
//   - the type: FAT32 from 512 MiB; below, FAT12 when the cluster count
//     fits FAT12 at the cluster size being tried, else FAT16;
//   - FAT12/16 clusters start at 4 sectors and double until the count fits
//     the type; FAT32 clusters are 1 sector up to 260 MiB (counted in
//     512-byte units, as mkfs.fat does), 8 sectors up to 8 GiB, 16 up to
//     16 GiB, 32 up to 32 GiB and 64 above, capped at 32 KiB;
//   - the DOS diskette BPBs (160K … 2.88M) for those exact sizes with
//     512-byte sectors; 512 root entries otherwise (rounded up to whole
//     sectors); 1 reserved sector on FAT12/16, 32 on FAT32; 2 FATs; media
//     0xF8 outside diskettes.
//
// Then, unlike mkfs.fat, a count within 16 of a threshold is moved out of
// the guard band: the cluster size is halved (count too low for the type)
// or doubled (too high) while that keeps the type. Clusters are never
// larger than 32 KiB.
func Format(d device.Device, opts FormatOptions) error {
	ss := d.SectorSize()
	if !device.ValidSectorSize(ss) {
		return fmt.Errorf("mkfs: unsupported sector size %d", ss)
	}
	total := d.Size() / int64(ss)
	if total > 0xFFFFFFFF {
		total = 0xFFFFFFFF // TotSec32 cannot count more
	}
	l, err := chooseLayout(total, ss, opts)
	if err != nil {
		return fmt.Errorf("mkfs: %w", err)
	}
	var label [11]byte
	copy(label[:], "NO NAME    ")
	if opts.Label != "" {
		cp, _ := codePage(0)
		if label, err = encodeLabel(cp, opts.Label); err != nil {
			return fmt.Errorf("mkfs: %w", err)
		}
	}
	serial := opts.Serial
	if !opts.SerialSet {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("mkfs: serial number: %w", err)
		}
		serial = binary.LittleEndian.Uint32(b[:])
	}
	oem := opts.OEMName
	if oem == "" {
		oem = "MEDIAFS "
	}
	bs := &bootSector{
		Jump:       [3]byte{0xEB, 0x3C, 0x90},
		BytsPerSec: uint16(ss),
		SecPerClus: uint8(l.spc),
		RsvdSecCnt: uint16(l.reserved),
		NumFATs:    2,
		RootEntCnt: uint16(l.rootEnt),
		Media:      l.media,
		SecPerTrk:  uint16(l.spt),
		NumHeads:   uint16(l.heads),
		HiddSec:    opts.HiddenSectors,
		DrvNum:     0x80,
		BootSig:    extBootSig,
		VolID:      serial,
		VolLab:     label,
		Signature:  0xAA55,
	}
	copy(bs.OEMName[:], fmt.Sprintf("%-8.8s", oem))
	if l.media != 0xF8 {
		bs.DrvNum = 0
	}
	if l.fatType == fat32 {
		bs.Jump[1] = 0x58
		bs.FATSz32 = uint32(l.fatSecs)
		bs.RootClus = 2
		bs.FSInfo = 1
		bs.BkBootSec = 6
		bs.TotSec32 = uint32(l.total)
		copy(bs.FilSysType[:], "FAT32   ")
	} else {
		bs.FATSz16 = uint16(l.fatSecs)
		if l.total < 0x10000 {
			bs.TotSec16 = uint16(l.total)
		} else {
			bs.TotSec32 = uint32(l.total)
		}
		copy(bs.FilSysType[:], fmt.Sprintf("FAT%d   ", l.fatType))
	}

	w := &zeroWriter{d: d, ss: int64(ss)}
	// The reserved sectors, the FATs and the FAT12/16 root: zeros first.
	rootStart := l.reserved + 2*l.fatSecs
	end := rootStart + l.rootSecs
	if err := w.zero(0, end); err != nil {
		return fmt.Errorf("mkfs: %w", err)
	}
	if l.fatType == fat32 {
		// The root directory: cluster 2.
		if err := w.zero(rootStart, int64(l.spc)); err != nil {
			return fmt.Errorf("mkfs: %w", err)
		}
	}

	sec := make([]byte, ss)
	// FAT heads: FAT[0] media, FAT[1] end-of-chain with the clean and
	// no-error bits set, FAT[2] the FAT32 root's end of chain.
	var head []byte
	switch l.fatType {
	case fat12:
		e0, e1 := uint32(0xF00)|uint32(l.media), uint32(0xFFF)
		head = []byte{byte(e0), byte(e0>>8) | byte(e1<<4), byte(e1 >> 4)}
	case fat16:
		head = binary.LittleEndian.AppendUint16(nil, 0xFF00|uint16(l.media))
		head = binary.LittleEndian.AppendUint16(head, 0xFFFF)
	default:
		head = binary.LittleEndian.AppendUint32(nil, 0x0FFFFF00|uint32(l.media))
		head = binary.LittleEndian.AppendUint32(head, 0x0FFFFFFF)
		head = binary.LittleEndian.AppendUint32(head, 0x0FFFFFFF)
	}
	copy(sec, head)
	for i := range int64(2) {
		if _, err := d.WriteAt(sec, (l.reserved+i*l.fatSecs)*int64(ss)); err != nil {
			return fmt.Errorf("mkfs: %w", err)
		}
	}

	// The label entry, first in the root directory.
	if opts.Label != "" {
		clear(sec)
		t := opts.Time
		if t.IsZero() {
			t = time.Now()
		}
		e := dirEntry{Name: label, Attr: attrVolumeID}
		e.WrtDate, e.WrtTime, _ = encodeTime(t, t.Location())
		e.encode(sec)
		// FAT32: cluster 2, the root, is the first data cluster.
		if _, err := d.WriteAt(sec, rootStart*int64(ss)); err != nil {
			return fmt.Errorf("mkfs: %w", err)
		}
	}

	// Boot sector, FSInfo and their backups.
	clear(sec)
	bs.encode(sec)
	copy(sec[bs.extOffset()+26:], bootStub)
	if _, err := d.WriteAt(sec, 0); err != nil {
		return fmt.Errorf("mkfs: %w", err)
	}
	if l.fatType == fat32 {
		if _, err := d.WriteAt(sec, 6*int64(ss)); err != nil {
			return fmt.Errorf("mkfs: %w", err)
		}
		clear(sec)
		fi := fsInfo{LeadSig: fsInfoLeadSig, StrucSig: fsInfoStrucSig, FreeCount: uint32(l.clusters - 1), NxtFree: 3, TrailSig: fsInfoTrailSig}
		fi.encode(sec)
		for _, s := range []int64{1, 7} {
			if _, err := d.WriteAt(sec, s*int64(ss)); err != nil {
				return fmt.Errorf("mkfs: %w", err)
			}
		}
	}
	return d.Sync()
}

// bootStub is the boot code placed after the extended BPB: INT 18h (no
// bootable disk: the BIOS tries the next device), then halt.
var bootStub = []byte{0xCD, 0x18, 0xF4, 0xEB, 0xFD}

// zeroWriter writes runs of zero sectors in large requests.
type zeroWriter struct {
	d   device.Device
	ss  int64
	buf []byte
}

func (w *zeroWriter) zero(sec, n int64) error {
	if w.buf == nil {
		w.buf = make([]byte, 1<<20)
	}
	per := int64(len(w.buf)) / w.ss
	for n > 0 {
		k := min(n, per)
		if _, err := w.d.WriteAt(w.buf[:k*w.ss], sec*w.ss); err != nil {
			return err
		}
		sec, n = sec+k, n-k
	}
	return nil
}

// chooseLayout picks the type, cluster size and layout.
func chooseLayout(total int64, ss int, opts FormatOptions) (*layout, error) {
	want := 0
	switch strings.ToLower(opts.Type) {
	case "":
	case "fat12", "12":
		want = fat12
	case "fat16", "16":
		want = fat16
	case "fat32", "32":
		want = fat32
	default:
		return nil, fmt.Errorf("unknown FAT type %q (want fat12, fat16 or fat32)", opts.Type)
	}
	maxSPC := 32768 / ss
	userSPC := 0
	if opts.ClusterSize != 0 {
		cs := opts.ClusterSize
		if cs%ss != 0 || !isPow2(cs/ss) || cs > 32768 {
			return nil, fmt.Errorf("cluster size %d: want a power-of-two multiple of the %d-byte sector, at most 32 KiB", cs, ss)
		}
		userSPC = cs / ss
	}
	size := total * int64(ss)
	if size < 64<<10 {
		return nil, fmt.Errorf("%d bytes is too small for a FAT file system", size)
	}
	base := layout{ss: ss, total: total, media: 0xF8, spt: 32, heads: 64, rootEnt: 512}
	if size >= 512<<20 {
		base.spt, base.heads = 63, 255
	}
	spc0 := 4
	if ss == 512 && size%1024 == 0 {
		for _, f := range floppies {
			if int64(f.kib)<<10 == size {
				base.spt, base.heads, base.media, base.rootEnt = f.spt, f.heads, f.media, f.rootEnt
				spc0 = f.spc
			}
		}
	}
	spc0 = min(spc0, maxSPC)
	perSec := ss / dirEntrySize
	base.rootEnt = (base.rootEnt + perSec - 1) / perSec * perSec

	try := func(fatType, spc int) *layout {
		l := base
		l.fatType, l.spc = fatType, spc
		if fatType == fat32 {
			l.reserved, l.rootEnt, l.rootSecs = 32, 0, 0
		} else {
			l.reserved = 1
			l.rootSecs = int64(l.rootEnt * dirEntrySize / ss)
		}
		l.plan()
		return &l
	}
	// fit moves the cluster size of type t from spc until the count is in
	// the type's range, halving when too few clusters, doubling when too
	// many.
	fit := func(t, spc int) *layout {
		l := try(t, spc)
		for i := 0; i < 16 && !l.inRange(); i++ {
			low := l.clusters < minFAT16Clusters+thresholdGuard
			if t == fat32 {
				low = l.clusters < minFAT32Clusters+thresholdGuard
			}
			if t == fat12 {
				low = l.clusters < 1
			}
			switch {
			case low && l.spc > 1 && userSPC == 0:
				l = try(t, l.spc/2)
			case !low && l.spc < maxSPC && userSPC == 0:
				l = try(t, l.spc*2)
			default:
				return nil
			}
		}
		if !l.inRange() {
			return nil
		}
		return l
	}

	if userSPC != 0 {
		types := []int{want}
		if want == 0 {
			types = []int{fat12, fat16, fat32}
			if size >= 512<<20 {
				types = []int{fat32, fat16, fat12}
			}
		}
		for _, t := range types {
			if l := try(t, userSPC); l.inRange() {
				return l, nil
			}
		}
		return nil, fmt.Errorf("a %d-byte volume with %d-byte clusters does not make a valid %s volume clear of the cluster-count thresholds", size, opts.ClusterSize, typeName(want))
	}

	if want == 0 {
		if size >= 512<<20 {
			want = fat32
		} else {
			// mkfs.fat: at each cluster size from 4 sectors, FAT12 if the
			// count fits FAT12, else FAT16 if it fits FAT16, else double.
			for spc := spc0; spc <= maxSPC; spc *= 2 {
				if l := try(fat12, spc); l.clusters >= 1 && l.clusters < minFAT16Clusters {
					want = fat12
					break
				}
				if l := try(fat16, spc); l.clusters >= minFAT16Clusters && l.clusters < minFAT32Clusters {
					want = fat16
					break
				}
			}
			if want == 0 {
				want = fat16
			}
		}
	}
	spc := spc0
	if want == fat32 {
		// mkfs.fat's FAT32 table, in its 512-byte units.
		sectors512 := size / 512
		switch {
		case sectors512 > 32<<21:
			spc = 64
		case sectors512 > 16<<21:
			spc = 32
		case sectors512 > 8<<21:
			spc = 16
		case sectors512 > 260<<11:
			spc = 8
		default:
			spc = 1
		}
		spc = min(spc, maxSPC)
	}
	if l := fit(want, spc); l != nil {
		return l, nil
	}
	return nil, fmt.Errorf("a %d-byte volume with %d-byte sectors cannot hold %s with a cluster count clear of the type thresholds and clusters of at most 32 KiB", size, ss, typeName(want))
}

func typeName(t int) string {
	if t == 0 {
		return "FAT"
	}
	return fmt.Sprintf("FAT%d", t)
}

// errLabel starts the message of every refused label (which also wraps
// ErrInvalidName or ErrNameTooLong).
var errLabel = errors.New("invalid volume label")

// encodeLabel turns a label into its 11 OEM bytes: upper case, at most 11
// characters of the code page, none of the characters short names may not
// hold.
func encodeLabel(cp interface{ EncodeRune(rune) (byte, bool) }, s string) ([11]byte, error) {
	var out [11]byte
	for i := range out {
		out[i] = ' '
	}
	s = strings.ToUpper(s)
	if strings.TrimRight(s, " ") == "" {
		return out, fmt.Errorf("%w %q: empty: %w", errLabel, s, ErrInvalidName)
	}
	i := 0
	for _, r := range s {
		if r < 0x20 || strings.ContainsRune(`"*+,./:;<=>?[\]|`, r) || r == 0x7F {
			return out, fmt.Errorf("%w %q: character %q is not allowed: %w", errLabel, s, r, ErrInvalidName)
		}
		b, ok := cp.EncodeRune(r)
		if !ok {
			return out, fmt.Errorf("%w %q: character %q is not in the OEM code page: %w", errLabel, s, r, ErrInvalidName)
		}
		if i >= 11 {
			return out, fmt.Errorf("%w %q: longer than 11 characters: %w", errLabel, s, ErrNameTooLong)
		}
		out[i] = b
		i++
	}
	if out[0] == nameFree {
		out[0] = nameKanjiE5
	}
	return out, nil
}
