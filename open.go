package mediafs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/mediafs/mediafs/device"
	"github.com/mediafs/mediafs/fat"
	"github.com/mediafs/mediafs/iso9660"
	"github.com/mediafs/mediafs/partition"
)

// Open opens an image file, a raw CD image (.bin, or its .cue sheet) or a
// block device, and the file system on it, for reading: the medium is
// opened read-only and nothing is ever written to it (OpenWritable opens
// FAT media for writing).
func Open(path string, opts ...Option) (FS, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	o.readOnly = true
	return openPath(path, &o)
}

// openPath opens the medium at path, its fault-handling wrappers and the
// file system on it; the FS owns the medium.
func openPath(path string, o *options) (FS, error) {
	d, err := openMedium(path, o)
	if err != nil {
		return nil, err
	}
	d = wrapMedium(d, o)
	f, err := openDevice(d, o)
	if err != nil {
		d.Close()
		return nil, err
	}
	return f, nil
}

func openMedium(path string, o *options) (device.Device, error) {
	if strings.EqualFold(pathExt(path), ".cue") {
		return device.OpenCue(path)
	}
	f, err := device.Open(path, device.Options{ReadOnly: o.readOnly})
	if err != nil {
		return nil, err
	}
	if !f.IsBlockDevice() && f.Size() >= 16 {
		head := make([]byte, 512)
		if _, err := f.ReadAt(head, 0); err == nil && device.IsRawCD(head) {
			f.Close()
			return device.OpenRawCD(path)
		}
	}
	if f.IsBlockDevice() && !o.sessionSet {
		if s := device.LastSession(f); s > 0 {
			o.session = s
		}
	}
	return f, nil
}

// wrapMedium adds the fault handling options: the ddrescue map, retries
// and, for block devices, the per-request timeout (outermost, so that a
// retried request is still bounded).
func wrapMedium(d device.Device, o *options) device.Device {
	o.blockDev = isBlockDevice(d)
	if o.mapfile != nil {
		d = device.NewMapped(d, o.mapfile)
	}
	if o.retries > 0 {
		d = device.NewRetry(d, o.retries)
	}
	if o.blockDev && o.ioTimeout > 0 {
		d = device.NewTimeout(d, o.ioTimeout)
	}
	return d
}

// isBlockDevice reports whether d is (a wrapper of) a block device.
func isBlockDevice(d device.Device) bool {
	for d != nil {
		if f, ok := d.(*device.File); ok {
			return f.IsBlockDevice()
		}
		u, ok := d.(interface{ Unwrap() device.Device })
		if !ok {
			return false
		}
		d = u.Unwrap()
	}
	return false
}

func pathExt(p string) string {
	i := strings.LastIndexByte(p, '.')
	if i < 0 || strings.ContainsRune(p[i:], '/') {
		return ""
	}
	return p[i:]
}

// OpenDevice opens the file system on a device. The FS owns the device and
// closes it on Close.
func OpenDevice(d device.Device, opts ...Option) (FS, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return openDevice(wrapMedium(d, &o), &o)
}

func openDevice(d device.Device, o *options) (FS, error) {
	if o.sectorSize != 0 && !device.ValidSectorSize(o.sectorSize) {
		return nil, fmt.Errorf("unsupported sector size %d (want 512, 1024, 2048 or 4096)", o.sectorSize)
	}
	// 1. ISO 9660 wins over a partition table unless a partition is asked for.
	if o.partition == 0 && d.Size() >= 17*2048 {
		if v, err := device.NewView(d, 2048); err == nil && iso9660.Probe(v, o.session) {
			return openISO(d, v, o)
		}
	}
	if o.session != 0 && !o.sessionSet {
		o.session = 0
	}

	// 2. A partition table.
	tab, tabErr := findPartitionTable(d, o)
	if tab != nil {
		return openPartition(d, tab, o)
	}
	if o.partition != 0 {
		if tabErr != nil {
			return nil, tabErr
		}
		return nil, fmt.Errorf("--partition %d: the medium has no partition table", o.partition)
	}

	// 3. A file system at sector 0.
	head := make([]byte, 4096)
	n := int64(len(head))
	if d.Size() < n {
		n = d.Size() / int64(d.SectorSize()) * int64(d.SectorSize())
	}
	if n == 0 {
		return nil, fmt.Errorf("the medium is empty: %w", ErrUnrecognized)
	}
	if _, err := d.ReadAt(head[:n], 0); err != nil {
		// A bad sector after the first must not hide the boot sector.
		ss := int64(d.SectorSize())
		if !device.IsMediaError(err) || ss >= n {
			return nil, fmt.Errorf("reading the boot sector: %w", err)
		}
		if _, err2 := d.ReadAt(head[:ss], 0); err2 != nil {
			return nil, fmt.Errorf("reading the boot sector: %w", err2)
		}
		clear(head[ss:n])
	}
	if bps, ok := fat.Probe(head); ok {
		return openFAT(d, 0, d.Size(), bps, "", o)
	}
	if name := identify(d); name != "" {
		return nil, &UnsupportedError{FS: name}
	}
	if tabErr != nil {
		return nil, fmt.Errorf("%w (the partition table is damaged: %v)", ErrUnrecognized, tabErr)
	}
	return nil, ErrUnrecognized
}

// sectorSizesToTry lists the sector sizes at which to look for a partition
// table: the override, the block device's own, or every size for an image.
func sectorSizesToTry(d device.Device, o *options) []int {
	if o.sectorSize != 0 {
		return []int{o.sectorSize}
	}
	if o.blockDev {
		return []int{d.SectorSize()}
	}
	var out []int
	for _, ss := range []int{512, 1024, 2048, 4096} {
		if ss%d.SectorSize() == 0 {
			out = append(out, ss)
		}
	}
	return out
}

type foundTable struct {
	tab *partition.Table
	dev device.Device // the medium presented in the table's sector size
}

// findPartitionTable reads the partition table at the sector size where it
// points at a valid FAT boot sector; failing that, at the first sector size
// where a table parses at all.
func findPartitionTable(d device.Device, o *options) (*foundTable, error) {
	var first *foundTable
	var firstErr error
	for _, ss := range sectorSizesToTry(d, o) {
		v, err := device.NewView(d, ss)
		if err != nil {
			continue
		}
		tab, err := partition.Read(v, v.Size(), ss)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if tab == nil || len(tab.Partitions) == 0 {
			continue
		}
		ft := &foundTable{tab: tab, dev: v}
		if first == nil {
			first = ft
		}
		for _, p := range tab.Partitions {
			if bps, ok := probeFATAt(v, p.Start); ok && bps == ss {
				return ft, nil
			}
		}
	}
	if first != nil {
		return first, nil
	}
	return nil, firstErr
}

func probeFATAt(d device.Device, off int64) (int, bool) {
	ss := int64(d.SectorSize())
	n := max(ss, 512)
	if off < 0 || off+n > d.Size() {
		return 0, false
	}
	buf := make([]byte, n)
	if _, err := d.ReadAt(buf, off); err != nil {
		return 0, false
	}
	return fat.Probe(buf)
}

func openPartition(d device.Device, ft *foundTable, o *options) (FS, error) {
	parts := ft.tab.Partitions
	var p *partition.Partition
	if o.partition != 0 {
		for i := range parts {
			if parts[i].Index == o.partition {
				p = &parts[i]
			}
		}
		if p == nil {
			var idx []string
			for _, q := range parts {
				idx = append(idx, fmt.Sprint(q.Index))
			}
			return nil, fmt.Errorf("--partition %d: no such partition (the %s table has partitions %s)", o.partition, strings.ToUpper(ft.tab.Kind), strings.Join(idx, ", "))
		}
	} else {
		for i := range parts {
			if _, ok := probeFATAt(ft.dev, parts[i].Start); ok {
				p = &parts[i]
				break
			}
		}
		if p == nil {
			for _, q := range parts {
				if name := identifyAt(ft.dev, q.Start, q.Size); name != "" {
					return nil, &UnsupportedError{FS: name, Where: fmt.Sprintf("partition %d", q.Index)}
				}
			}
			return nil, fmt.Errorf("no FAT file system in any of the %d partitions of the %s table: %w", len(parts), strings.ToUpper(ft.tab.Kind), ErrUnrecognized)
		}
	}
	where := fmt.Sprintf("partition %d", p.Index)
	bps, ok := probeFATAt(ft.dev, p.Start)
	if !ok {
		if name := identifyAt(ft.dev, p.Start, p.Size); name != "" {
			return nil, &UnsupportedError{FS: name, Where: where}
		}
		return nil, fmt.Errorf("%s (%s): no FAT file system: %w", where, p.TypeName, ErrUnrecognized)
	}
	f, err := openFAT(ft.dev, p.Start, p.Size, bps, where, o)
	if err != nil {
		return nil, err
	}
	f.parts = partitionInfos(ft.tab, p.Index)
	for _, w := range ft.tab.Warnings {
		f.extraWarn = append(f.extraWarn, strings.ToUpper(ft.tab.Kind)+": "+w)
	}
	return f, nil
}

// identify names a file system mediafs recognises but does not implement.
func identify(d device.Device) string { return identifyAt(d, 0, d.Size()) }

func identifyAt(d device.Device, off, size int64) string {
	read := func(at int64, n int) []byte {
		ss := int64(d.SectorSize())
		lo := (off + at) / ss * ss
		hi := (off + at + int64(n) + ss - 1) / ss * ss
		if at+int64(n) > size || hi > d.Size() {
			return nil
		}
		buf := make([]byte, hi-lo)
		if _, err := d.ReadAt(buf, lo); err != nil {
			return nil
		}
		s := off + at - lo
		return buf[s : s+int64(n)]
	}
	if b := read(0, 16); b != nil {
		switch {
		case bytes.Equal(b[3:11], []byte("EXFAT   ")):
			return "exFAT"
		case bytes.Equal(b[3:11], []byte("NTFS    ")):
			return "NTFS"
		}
	}
	// UDF: a Volume Recognition Sequence from byte 32768 (ECMA-167 2/9.1).
	for i := int64(0); i < 8; i++ {
		b := read(32768+i*2048, 6)
		if b == nil {
			break
		}
		if id := string(b[1:6]); id == "NSR02" || id == "NSR03" {
			return "UDF"
		}
	}
	if b := read(1024, 64); b != nil {
		if binary.LittleEndian.Uint16(b[56:]) == 0xEF53 {
			return "ext2/3/4"
		}
		switch string(b[:2]) {
		case "H+", "HX":
			return "HFS+"
		case "BD":
			return "HFS"
		}
	}
	return ""
}
