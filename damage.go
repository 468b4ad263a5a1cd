package mediafs

import (
	"errors"
	"fmt"

	"github.com/mediafs/mediafs/device"
)

// DamageObject is one object that the bad areas of a rescued medium hit;
// its JSON form is a line of `mediafs damage --json` (DESIGN.md, "damage").
type DamageObject struct {
	Path string `json:"path"` // "/DIR/FILE", or a name in angle brackets for metadata: "<FAT 2>"
	Kind string `json:"kind"` // file, dir, metadata
	Size int64  `json:"size"` // bytes of the object (a directory's allocation or length)
	// Ranges are the lost bytes as [offset, length] pairs: offsets in the
	// file or directory, or on the medium (the whole image, as the mapfile
	// counts) for metadata.
	Ranges [][2]int64 `json:"ranges"`
	// LostSectors counts a directory's unreadable sectors. LostEntries is
	// the most entries they can have held, which cannot be named: FAT
	// counts the 32-byte entry slots in them, ISO 9660 one record per 34
	// bytes (the smallest record).
	LostSectors *int64 `json:"lost_sectors,omitempty"`
	LostEntries *int64 `json:"lost_entries,omitempty"`
	Note        string `json:"note,omitempty"` // what the loss means, where that is not plain
}

// LostBytes is the sum of the lengths of the object's lost ranges.
func (o *DamageObject) LostBytes() int64 {
	var n int64
	for _, r := range o.Ranges {
		n += r[1]
	}
	return n
}

// DamageReport is what Damage found.
type DamageReport struct {
	Objects  []DamageObject
	Bad      []device.Range // the bad areas of the medium (the map's, clipped to the medium)
	InVolume int64          // bytes of bad areas within the volume read
	Warnings []string       // what the walk found wrong that is not damage
}

// BadAreas returns the byte ranges of a medium of size bytes that a ddrescue
// mapfile does not mark as finished ("+"): its non-finished blocks and
// whatever it does not cover, as device.NewMapped makes them unreadable.
func BadAreas(m *device.Mapfile, size int64) []device.Range {
	var out []device.Range
	add := func(off, n int64) {
		off, end := max(off, 0), min(off+n, size)
		if end <= off {
			return
		}
		if k := len(out) - 1; k >= 0 && off <= out[k].End() {
			out[k].Len = max(out[k].End(), end) - out[k].Off
			return
		}
		out = append(out, device.Range{Off: off, Len: end - off})
	}
	var covered int64
	for _, b := range m.Blocks {
		if b.Off > covered {
			add(covered, b.Off-covered)
		}
		if b.Status != '+' {
			add(b.Off, b.Len)
		}
		covered = max(covered, b.End())
	}
	if covered < size {
		add(covered, size-covered)
	}
	return out
}

// damager is implemented by the drivers' file systems.
type damager interface {
	Damage(bad []device.Range) ([]device.Damage, []string)
}

// Damage works out what the bad areas of mapfile m hit on f: every file
// whose data and every directory whose entries lie in a bad area, with the
// lost bytes, and the metadata they hit. It reads metadata only, never
// file data. f should have been opened with WithMapfile(m), so that
// nothing a rescue left in the bad areas (ddrescue leaves zeros) is read
// as metadata. Offsets in the map are bytes of the medium f was opened
// from; for a partition they are converted to the volume's.
func Damage(f FS, m *device.Mapfile) (*DamageReport, error) {
	var medium, vol device.Device
	var drv damager
	switch x := f.(type) {
	case *fatFS:
		medium, vol, drv = x.dev, x.FS.Device(), x.FS
	case *isoFS:
		medium, vol, drv = x.dev, x.FS.Device(), x.FS
	default:
		return nil, errors.New("damage: not a file system opened by mediafs")
	}
	base, ok := volumeBase(vol, medium)
	if !ok {
		return nil, errors.New("damage: cannot place the volume on the medium")
	}
	rep := &DamageReport{Bad: BadAreas(m, medium.Size())}
	// The bad areas in the volume's byte offsets.
	var bad []device.Range
	for _, r := range rep.Bad {
		lo, hi := max(r.Off, base), min(r.End(), base+vol.Size())
		if hi > lo {
			bad = append(bad, device.Range{Off: lo - base, Len: hi - lo})
			rep.InVolume += hi - lo
		}
	}
	objs, warn := drv.Damage(bad)
	for _, d := range objs {
		o := DamageObject{Path: d.Path, Kind: d.Kind, Size: d.Size, Note: d.Note, Ranges: [][2]int64{}}
		for _, r := range d.Ranges {
			off := r.Off
			if d.Kind == "metadata" { // volume offsets: the medium's
				off += base
			}
			o.Ranges = append(o.Ranges, [2]int64{off, r.Len})
		}
		if d.Kind == "dir" {
			o.LostSectors, o.LostEntries = &d.LostSectors, &d.LostEntries
		}
		rep.Objects = append(rep.Objects, o)
	}
	rep.Warnings = warn
	return rep, nil
}

// volumeBase returns the byte offset of the volume's device vol on the
// medium it was opened from, going down through partition windows and
// the other wrappers.
func volumeBase(vol, medium device.Device) (int64, bool) {
	var base int64
	for d, hops := vol, 0; d != nil && hops < 16; hops++ {
		if d == medium {
			return base, true
		}
		switch x := d.(type) {
		case *device.Window:
			base += x.Offset
			d = x.Dev
		case interface{ Unwrap() device.Device }:
			d = x.Unwrap()
		default:
			return 0, false
		}
	}
	return 0, false
}

// Summary describes the report in one line.
func (r *DamageReport) Summary() string {
	var files, dirs, meta int
	for _, o := range r.Objects {
		switch o.Kind {
		case "file":
			files++
		case "dir":
			dirs++
		default:
			meta++
		}
	}
	var bad int64
	for _, b := range r.Bad {
		bad += b.Len
	}
	if len(r.Objects) == 0 {
		return fmt.Sprintf("%s of bad areas (%s in the volume): no file, directory or metadata is hit", plural(bad, "byte"), plural(r.InVolume, "byte"))
	}
	return fmt.Sprintf("%s of bad areas (%s in the volume) hit %s, %s and %s",
		plural(bad, "byte"), plural(r.InVolume, "byte"), plural(int64(files), "file"), plural(int64(dirs), "directory"), plural(int64(meta), "metadata area"))
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	switch {
	case what == "directory":
		what = "directories"
	default:
		what += "s"
	}
	return fmt.Sprintf("%d %s", n, what)
}

// LostRanges returns the byte ranges of a directory that a ReadDir error
// says could not be read, as offsets in the directory (nil when the error
// is not about unreadable sectors).
func LostRanges(err error) []device.Range {
	if dd, ok := errors.AsType[*device.DirDamageError](err); ok {
		return dd.LostRanges()
	}
	return nil
}

// IsDirDamage reports whether err says that a directory could be read only
// in part (unreadable sectors, or a cluster chain that cannot be followed):
// the entries returned with it are those of the parts that were read.
func IsDirDamage(err error) bool {
	_, ok := errors.AsType[*device.DirDamageError](err)
	return ok
}
